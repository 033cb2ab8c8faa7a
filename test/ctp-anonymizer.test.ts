import { describe, expect, it } from 'vitest';
import { findElement } from '../src/dicom/element.js';
import { rawString } from '../src/dicom/values.js';
import { compileProfile } from '../src/profiles/compile.js';
import { parseAnonymizerScript, parseLookupTable, ScriptSyntaxError } from '../src/profiles/ctp/anonymizer-script.js';
import { parseScriptExpr, ScriptExprError } from '../src/profiles/ctp/script-expr.js';
import { summarize, translateAnonymizer, type AnonymizerImport } from '../src/profiles/ctp/translate-anonymizer.js';
import { deidentifyHeader } from '../src/stages/header.js';
import { SECRET, baseDataset, el, makeFile, privateBlock, seq, u16 } from './helpers/dicom-builder.js';

const script = (body: string) => `<script>\n${body}\n</script>\n`;

describe('reading CTP anonymizer scripts', () => {
  it('should read parameters, element, keep and remove rules with their line numbers, skipping comments', () => {
    const s = parseAnonymizerScript(
      [
        '<?xml version="1.0"?>',
        '<script>',
        ' <!-- a comment',
        '      over two lines <e en="T" t="00100010">@remove()</e> -->',
        ' <p t="DATEINC">-10</p>',
        ' <e en="T" t="00100010" n="PatientName">@hash(this,&quot;8&quot;)</e>',
        ' <e en="F" t="00100020" n="PatientID"/>',
        ' <k en="T" t="0018">Keep group 0018</k>',
        ' <r en="F" t="privategroups">Remove private groups</r>',
        ' <x t="1">?</x>',
        '</script>',
      ].join('\n'),
    );
    expect(s.params).toEqual([{ line: 5, name: 'DATEINC', value: '-10' }]);
    expect(s.elements).toEqual([
      { line: 6, enabled: true, tag: '00100010', name: 'PatientName', script: '@hash(this,"8")' },
      { line: 7, enabled: false, tag: '00100020', name: 'PatientID', script: '' },
    ]);
    expect(s.keeps).toEqual([{ line: 8, enabled: true, target: '0018' }]);
    expect(s.removes).toEqual([{ line: 9, enabled: false, target: 'privategroups' }]);
    expect(s.unknown).toEqual([{ line: 10, name: 'x' }]);
  });

  it.each([
    ['no root element', '<e en="T" t="00100010">@remove()</e>', 1],
    ['an element that is not closed', script(' <e en="T" t="00100010">@remove()'), 2],
    ['text between elements', script(' stray text\n <e en="T" t="00100010"></e>'), 2],
    ['markup inside a rule', script('\n <e en="T" t="00100010"><b>x</b></e>'), 3],
  ])('should refuse a script with %s, naming the line', (_what, text, line) => {
    let err: unknown;
    try {
      parseAnonymizerScript(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ScriptSyntaxError);
    expect((err as ScriptSyntaxError).line).toBe(line);
  });

  it('should read a lookup table by key type, with comments, escapes and continued lines', () => {
    const t = parseLookupTable(['# site table', 'ptid/123 = SUBJ-1', '! another comment', 'ptid/a\\=b: SUBJ-2', 'ptid/long = SUBJ-\\', '   3', 'acc/9=A9', 'nokeytype=x'].join('\n'));
    expect([...t.keys()]).toEqual(['ptid', 'acc']);
    expect(Object.fromEntries(t.get('ptid')!)).toEqual({ '123': 'SUBJ-1', 'a=b': 'SUBJ-2', long: 'SUBJ-3' });
    expect(t.get('acc')!.get('9')).toBe('A9');
  });

  it('should split a script into text and calls, with clauses, quotes and escapes', () => {
    expect(parseScriptExpr('@if(this,contains,"A,B"){@remove()}{Kept \\@here}')).toEqual([
      {
        kind: 'call',
        name: 'if',
        args: ['this', 'contains', '"A,B"'],
        clauses: [[{ kind: 'call', name: 'remove', args: [], clauses: [] }], [{ kind: 'text', text: 'Kept @here' }]],
      },
    ]);
    expect(parseScriptExpr('P-@hashptid(@SITEID,this,10)')).toEqual([
      { kind: 'text', text: 'P-' },
      { kind: 'call', name: 'hashptid', args: ['@SITEID', 'this', '10'], clauses: [] },
    ]);
    expect(parseScriptExpr('@always()@append(){CTP: @param(@NAME)}')[1]).toMatchObject({ name: 'append', clauses: [[{ kind: 'text', text: 'CTP: ' }, { name: 'param' }]] });
    expect(() => parseScriptExpr('@hash(this,10')).toThrow(ScriptExprError);
    expect(() => parseScriptExpr('@ oops')).toThrow(ScriptExprError);
    expect(() => parseScriptExpr('@if(this,isblank)')).toThrow(ScriptExprError);
  });
});

/** One rule per line, from line 2 on (line 1 is <script>). */
function translate(lines: readonly string[], opts: Partial<Parameters<typeof translateAnonymizer>[1]> = {}): AnonymizerImport {
  return translateAnonymizer(parseAnonymizerScript(script(lines.join('\n'))), { name: 'test', ...opts });
}
const e = (tag: string, body: string, en = 'T') => ` <e en="${en}" t="${tag}" n="x">${body}</e>`;
const ruleFor = (r: AnonymizerImport, select: string) => r.profile.rules!.find((x) => x.select === select);
const accountAt = (r: AnonymizerImport, line: number) => r.accounts.find((a) => a.line === line)!;

describe('translating CTP element scripts', () => {
  it('should translate each function to our action, and say which ones differ from CTP', () => {
    const r = translate([
      ' <p t="UIDROOT">1.2.3</p>',
      ' <p t="DATEINC">-100</p>',
      ' <p t="SHORTNAME">PRJ</p>',
      e('00080016', '@keep()'), // 5
      e('00081030', '@remove()'),
      e('00080090', '@empty()'),
      e('00081070', '@blank(4)'),
      e('00080018', '@hashuid(@UIDROOT,this)'),
      e('00080050', '@hash(this,16)'), // 10
      e('00100010', '@hashname(this,6,2)'),
      e('00100020', '@param(@SHORTNAME)-@hashptid(@SITEID,this,10)'),
      e('00080020', '@incrementdate(this,@DATEINC)'),
      e('00080030', '@time()'),
      e('00080080', 'RESEARCH SITE'), // 15
      e('00100040', '@require()'),
      e('00540016', '@always()@process()'),
      e('0040a075', '@if(this,isblank){@remove()}{Removed by CTP}'),
      e('00081048', '@if(this,exists){@remove()}{@keep()}'),
      e('00081050', '@select(){@empty()}{@remove()}'), // 20
      e('00081060', '@if(Modality,equals,"MR"){@keep()}{@remove()}'),
      e('00120062', '@always()YES'),
      e('00120063', '@always()@append(){CTP}'),
      e('00020003', '@hashuid(@UIDROOT,this)'),
      e('00130010', 'CTP'), // 25
      e('00101000', ''),
      e('00100030', '@keep()', 'F'),
    ]);
    const action = (sel: string) => ruleFor(r, sel)?.action;
    expect(action('(0008,0016)')).toBe('K');
    expect(action('(0008,1030)')).toBe('X');
    expect(action('(0008,0090)')).toBe('Z');
    expect(action('(0008,1070)')).toBe('Z');
    expect(action('(0008,0018)')).toBe('U');
    expect(action('(0008,0050)')).toEqual({ hash: { length: 16 } });
    expect(action('(0010,0010)')).toEqual({ hash: { length: 6 } });
    expect(action('(0010,0020)')).toEqual({ hash: { length: 10, prefix: 'PRJ-' } });
    expect(action('(0008,0020)')).toBe('dateshift');
    expect(r.profile.dateShift).toEqual({ minDays: -100, maxDays: -100 });
    expect(action('(0008,0030)')).toBe('D');
    expect(action('(0008,0080)')).toEqual({ set: 'RESEARCH SITE' });
    expect(action('(0010,0040)')).toBe('K');
    expect(action('(0054,0016)')).toBe('K');
    expect(action('(0040,A075)')).toEqual({ set: 'Removed by CTP' });
    expect(action('(0008,1048)')).toBe('X');
    // @select: the root value emptied, the same attribute inside sequence items removed.
    expect(action('(0008,1050)')).toBe('Z');
    expect(action('*/**/(0008,1050)')).toBe('X');
    // A condition on another attribute: the more protective branch, always.
    expect(action('(0008,1060)')).toBe('X');
    expect(action('(0010,1000)')).toBe('Z');
    // Marking, meta and private creators are ours to write; the unchecked rule writes nothing.
    for (const sel of ['(0012,0062)', '(0012,0063)', '(0002,0003)', '(0013,0010)', '(0010,0030)']) expect(action(sel), sel).toBeUndefined();

    const outcome = (line: number) => accountAt(r, line).outcome;
    expect([5, 6, 7, 13, 15, 17, 19, 20, 22, 26].map(outcome)).toEqual(Array(10).fill('translated'));
    expect([8, 9, 10, 11, 12, 14, 16, 18, 21, 23, 24, 25].map(outcome)).toEqual(Array(12).fill('approximated'));
    expect(outcome(27)).toBe('disabled');
    expect(accountAt(r, 9).note).toMatch(/2\.25\..*not 1\.2\.3\.<MD5>/);
    expect(r.params.map((p) => [p.name, p.used])).toEqual([
      ['UIDROOT', true],
      ['DATEINC', true],
      ['SHORTNAME', true],
    ]);
    expect(summarize(r.accounts)).toMatchObject({ total: 23, disabled: 1, untranslatable: 0, share: 1 });
  });

  it('should report what it cannot translate, with the line and reason, and write a fail-closed stand-in', () => {
    const r = translate([
      ' <p t="DATEINC">Change this to a negative number</p>',
      e('00080020', '@incrementdate(this,@DATEINC)'), // 3
      e('00100010', '@lookup(PatientID,ptid)'),
      e('00100020', '@lookup(this,ptid)'),
      e('00080008', '@if(ImageType,contains,"SCREEN SAVE"){@quarantine()}{@keep()}'),
      e('00081110', '@encrypt(this,@KEY)'),
      e('00101000', 'ID-@contents(PatientID)'), // 8
      e('0008zz00', '@remove()'),
      e('00181030', '@hash(this'),
      ' <k en="T" t="0009">Keep group 0009</k>',
      ' <r en="T" t="everything">?</r>',
    ]);
    const bad = r.accounts.filter((a) => a.outcome === 'untranslatable');
    expect(bad.map((a) => a.line)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    for (const a of bad) expect(a.note, `line ${a.line}`).toBeTruthy();
    expect(accountAt(r, 3).note).toMatch(/not a whole number of days.*--param/);
    expect(accountAt(r, 5).note).toMatch(/--lookup/);
    expect(accountAt(r, 6).note).toMatch(/reject: \[\{ ImageType: "\*SCREEN SAVE\*" \}\]/);
    // Stand-ins: values emptied, a sequence removed, the non-quarantine branch kept.
    expect(ruleFor(r, '(0008,0020)')?.action).toBe('Z');
    expect(ruleFor(r, '(0010,0010)')?.action).toBe('Z');
    expect(ruleFor(r, '(0008,1110)')?.action).toBe('X');
    expect(ruleFor(r, '(0008,0008)')?.action).toBe('K');
    expect(ruleFor(r, '(0018,1030)')?.action).toBe('Z');
    expect(r.profile.dateShift).toBeUndefined();
    // A parameter given on the command line replaces the placeholder.
    const fixed = translate([' <p t="DATEINC">Change this</p>', e('00080020', '@incrementdate(this,@DATEINC)')], { params: { DATEINC: '-42' } });
    expect(summarize(fixed.accounts).untranslatable).toBe(0);
    expect(fixed.profile.dateShift).toEqual({ minDays: -42, maxDays: -42 });
  });

  it('should translate lookups given the table, and the global rules', () => {
    const r = translate(
      [
        e('00100020', '@lookup(this,ptid)'),
        ' <k en="T" t="0018">Keep group 0018</k>',
        ' <k en="T" t="safeprivateelements">Keep safe private elements</k>',
        ' <r en="T" t="privategroups">Remove private groups</r>',
        ' <r en="T" t="overlays">Remove overlays</r>',
        ' <r en="T" t="curves">Remove curves</r>',
        ' <r en="T" t="unspecifiedelements">Remove unchecked elements</r>',
        e('60000010', '@keep()'),
      ],
      { lookup: { tables: new Map([['ptid', new Map([['PID12345', 'SUBJ-1']])]]), file: 'LookupTable.properties' } },
    );
    expect(ruleFor(r, '(0010,0020)')?.action).toEqual({ lookup: { file: 'LookupTable.properties', keyType: 'ptid' } });
    expect(ruleFor(r, '(0018,xxxx)')?.action).toBe('K');
    expect(ruleFor(r, 'private')).toMatchObject({ action: 'X', options: { 'retain-safe-private': 'C' } });
    expect(r.profile.options).toEqual(['retain-safe-private']);
    expect(ruleFor(r, '(60xx,xxxx)')?.action).toBe('X');
    expect(ruleFor(r, '(50xx,xxxx)')?.action).toBe('X');
    // Overlay elements go with the overlays, whatever their own script says (CTP removes overlays first).
    expect(ruleFor(r, '(6000,0010)')).toBeUndefined();
    expect(r.profile.removeUnlisted).toBe(true);
    // Private groups left on: said explicitly, since our default removes them.
    const keepAll = translate([' <r en="F" t="privategroups">Remove private groups</r>']);
    expect(ruleFor(keepAll, 'private')?.action).toBe('K');
  });

  it('should clean kept descriptors, and name the base profile for unchecked rules', () => {
    const base = { name: 'basic', rules: new Map([['(0040,1001)', { select: '(0040,1001)', action: 'X' }]]) };
    const r = translate([e('00081030', '@keep()'), e('00401001', '', 'F')], { base, descriptors: new Set(['(0008,1030)']) });
    expect(ruleFor(r, '(0008,1030)')?.action).toBe('C');
    expect(accountAt(r, 2)).toMatchObject({ outcome: 'approximated', note: expect.stringMatching(/Clean Descriptors/) });
    expect(accountAt(r, 3)).toMatchObject({ outcome: 'disabled', note: "unchecked in CTP: basic's rule applies (X)" });
    expect(r.profile.extends).toBe('basic');
    // Kept ages are left as CTP leaves them, with a pointer to Safe Harbor top-coding.
    expect(translate([e('00101010', '@keep()')]).notes.join(' ')).toMatch(/generalize: \{ ageOver89: true \}/);
    expect(translate([e('00101010', '@remove()')]).notes.join(' ')).not.toMatch(/ageOver89/);
  });

  it('should produce a profile whose rules act as CTP intended on a real data set', () => {
    const r = translate([
      ' <p t="DATEINC">-10</p>',
      e('00100010', '@hash(this,8)'),
      e('00100020', '@lookup(this,ptid)'),
      e('00080020', '@incrementdate(this,@DATEINC)'),
      e('00080018', '@hashuid(@UIDROOT,this)'),
      e('0020000d', '@hashuid(@UIDROOT,this)'),
      e('0020000e', '@hashuid(@UIDROOT,this)'),
      e('00081050', '@select(){@empty()}{@remove()}'),
      ' <r en="T" t="privategroups">Remove private groups</r>',
      ' <r en="T" t="overlays">Remove overlays</r>',
    ], { lookup: { tables: new Map([['ptid', new Map([['PID12345', 'SUBJ-1']])]]), file: 'unused' } });
    // The lookup rule reads its file when the profile compiles; give it the table inline instead.
    const rules = r.profile.rules!.map((x) => (x.select === '(0010,0020)' ? { ...x, action: { set: 'SUBJ-1' } } : x));
    const profile = compileProfile([{ raw: { ...r.profile, rules }, dir: '.' }]);
    const src = makeFile(
      baseDataset([
        el('PerformingPhysicianName', 'PN', 'Root^Doctor'),
        seq('ReferencedStudySequence', [[el('PerformingPhysicianName', 'PN', 'Nested^Doctor')]]),
        privateBlock(0x0009, 'ACME', 0x10, [[0x01, 'LO', 'secret']]),
        el(0x60000010, 'US', u16(2)),
        el(0x60003000, 'OW', u16(1, 2)),
      ]),
    );
    const out = deidentifyHeader(src, { profile, secret: SECRET }).file.dataset;
    const v = (tag: number, ds = out) => rawString(findElement(ds, tag)?.value).trim();
    expect(v(0x00100010)).toMatch(/^[0-9A-Z]{8}$/);
    expect(v(0x00100020)).toBe('SUBJ-1');
    expect(v(0x00080020)).toBe('20200105');
    expect(v(0x00080018)).toMatch(/^2\.25\.\d+$/);
    expect(findElement(out, 0x00081050)?.value?.length).toBe(0);
    expect(findElement(findElement(out, 0x00081110)!.items![0].elements, 0x00081050)).toBeUndefined();
    expect(out.some((x) => x.tag >>> 16 === 0x0009 || x.tag >>> 16 === 0x6000)).toBe(false);
  });
});
