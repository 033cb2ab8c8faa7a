import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { implicitVR, keywordOf, lookupTag, repeatingForKeyword, tagForKeyword } from '../src/dicom/dictionary.js';
import { TAG } from '../src/dicom/tag.js';
import { corpusFile } from './helpers/corpus.js';

describe('the data dictionary', () => {
  const attributes = JSON.parse(readFileSync(corpusFile('standard/attributes.json'), 'utf8')) as Array<{ tag: string; keyword: string; valueRepresentation: string }>;
  const exact = attributes.filter((r) => /^[A-Z]/.test(r.keyword ?? '') && /^\([0-9A-F]{4},[0-9A-F]{4}\)$/i.test(r.tag));

  it('should find every exact attribute of PS3.6 by tag and by keyword', () => {
    expect(exact.length).toBeGreaterThan(4000);
    for (const r of exact) {
      const tag = parseInt(r.tag.replace(/[(),]/g, ''), 16);
      expect(keywordOf(tag), r.tag).toBe(r.keyword);
      expect(tagForKeyword(r.keyword), r.keyword).toBe(tag);
    }
  });

  it('should match a keyword only in the keyword column, never a VR or VM', () => {
    expect(tagForKeyword('PatientName')).toBe(0x00100010);
    for (const notKeyword of ['UL', 'SQ', '1', '1-n', 'OB or OW', '', 'patientname', 'Patient']) expect(tagForKeyword(notKeyword), notKeyword).toBeUndefined();
  });

  it('should resolve repeating groups, private creators, group lengths and implicit VRs', () => {
    expect(lookupTag(0x60023000)?.keyword).toBe('OverlayData');
    expect(repeatingForKeyword('OverlayData')).toEqual({ mask: 0xff00ffff, value: 0x60003000 });
    expect(lookupTag(0x00291010)).toBeUndefined();
    expect(lookupTag(0x00290010)?.keyword).toBe('PrivateCreator');
    expect(lookupTag(0x00180000)?.keyword).toBe('GroupLength');
    expect(implicitVR(0x7fe00010)).toBe('OW');
    expect(implicitVR(0x00280010)).toBe('US');
    expect(implicitVR(0x00091001)).toBe('UN');
  });
});

describe('the tag constants', () => {
  it('should name each tag by its dictionary keyword, generated from the same table', () => {
    const named: Array<[string, number]> = [
      ['SOPInstanceUID', TAG.SOPInstanceUID],
      ['BurnedInAnnotation', TAG.BurnedInAnnotation],
      ['FileMetaInformationGroupLength', TAG.FileMetaInformationGroupLength],
      ['RegionLocationMaxY1', TAG.RegionLocationMaxY1],
      ['SegmentedBluePaletteColorLookupTableData', TAG.SegmentedBluePaletteColorLookupTableData],
      ['Item', TAG.Item],
      ['SequenceDelimitationItem', TAG.SequenceDelimitationItem],
    ];
    for (const [keyword, tag] of named) expect(tag, keyword).toBe(tagForKeyword(keyword));
    expect(TAG.PixelData).toBe(0x7fe00010);
    expect(keywordOf(TAG.DeidentificationMethodCodeSequence)).toBe('DeidentificationMethodCodeSequence');
  });
});
