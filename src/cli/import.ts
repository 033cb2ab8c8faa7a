import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { formatTag } from '../dicom/tag.js';
import { DeidError } from '../errors.js';
import { parseAnonymizerScript, parseLookupTable, ScriptSyntaxError } from '../profiles/ctp/anonymizer-script.js';
import { groupedByNote, signaturesDocument, yamlDocument } from '../profiles/ctp/emit-yaml.js';
import { translatePixelScript } from '../profiles/ctp/pixel-script.js';
import { summarize, translateAnonymizer, type RuleAccount } from '../profiles/ctp/translate-anonymizer.js';
import { compileSignature } from '../profiles/pixel-settings.js';
import { compileProfile, readProfileChain, type RawRule } from '../profiles/profile.js';
import { parseSelector } from '../profiles/selector.js';

/**
 * `deid import ctp` and `deid import ctp-pixels`: CTP configurations into our profiles and signature
 * lists. Every entry of the script is accounted for on the terminal and in the written file; anything
 * without a translation stops the import (exit 2, nothing written) unless --allow-partial is given.
 * The output is loaded back through the same loader `deid run` uses before it is kept.
 */

const USAGE_CTP =
  'deid import ctp <DicomAnonymizer.script> [--lookup <LookupTable.properties>] [--allow-partial] -o <profile.yaml> [--name <name>] [--param NAME=VALUE]... [--extends <profile> | --standalone] [--json]';
const USAGE_PIXELS = 'deid import ctp-pixels <DicomPixelAnonymizer.script> [--allow-partial] -o <signatures.yaml> [--json]';

function readInput(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new DeidError('DEID_ERR_READ', `${basename(path)}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** Writes next to the target, loads it back with `check`, and only then puts it in place. */
function writeChecked(out: string, text: string, check: (tmp: string) => void, keep: boolean): void {
  const tmp = resolve(dirname(out), `.${basename(out)}.${process.pid}.tmp${extname(out)}`);
  try {
    writeFileSync(tmp, text, { mode: 0o644 });
  } catch (e) {
    throw new DeidError('DEID_ERR_OUTPUT', `${basename(out)}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    check(tmp);
    if (keep) renameSync(tmp, out);
  } finally {
    if (existsSync(tmp)) rmSync(tmp);
  }
}

/** Single-tag rules of a profile chain by selector, most derived first (as compilation picks them). */
function singleTagRules(nameOrPath: string): Map<string, RawRule> {
  const out = new Map<string, RawRule>();
  for (const { raw } of readProfileChain(nameOrPath)) {
    for (const r of raw.rules ?? []) {
      const steps = parseSelector(r.select);
      const key = steps.length === 1 && steps[0].kind === 'tag' ? formatTag(steps[0].tag) : undefined;
      if (key && !out.has(key)) out.set(key, r);
    }
  }
  return out;
}

/** The base an imported profile extends, named as the written profile will find it. */
function baseProfile(nameOrPath: string, outDir: string): { name: string; rules: Map<string, RawRule> } {
  const looksLikePath = /[\\/]/.test(nameOrPath) || /\.(ya?ml|json)$/i.test(nameOrPath);
  const name = looksLikePath ? relative(outDir, resolve(nameOrPath)) : nameOrPath;
  return { name, rules: singleTagRules(looksLikePath ? resolve(nameOrPath) : nameOrPath) };
}

/** The free-text descriptors of PS3.15 (the Basic Profile's Clean Descriptors column). */
function descriptorSelectors(): Set<string> {
  const out = new Set<string>();
  for (const [select, r] of singleTagRules('basic')) if (r.options?.['clean-descriptors']) out.add(select);
  return out;
}

/** Untranslatable rules without --allow-partial: said on stderr, exit 2 (1 is for usage errors). */
function partialExit(detail: string): number {
  process.stderr.write(`deid: ${new DeidError('DEID_ERR_IMPORT_PARTIAL', detail).message}\n`);
  return 2;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function printAccounts(lines: string[], accounts: ReadonlyArray<{ line: number; entry: string; outcome: string; note?: string }>): void {
  const untranslatable = accounts.filter((a) => a.outcome === 'untranslatable');
  if (untranslatable.length) {
    lines.push('untranslatable:');
    for (const g of groupedByNote(untranslatable)) lines.push(`  ${g}`);
  }
  const approximated = accounts.filter((a) => a.outcome === 'approximated');
  if (approximated.length) {
    lines.push('approximated:');
    for (const g of groupedByNote(approximated)) lines.push(`  ${g}`);
  }
}

function sanitizeName(s: string): string {
  const n = s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 64);
  return n || 'ctp-import';
}

function parseParams(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of list) {
    const i = p.indexOf('=');
    if (i <= 0) throw new DeidError('DEID_ERR_USAGE', `--param takes NAME=VALUE, got "${p.slice(0, 40)}"`);
    out[p.slice(0, i).trim().replace(/^@/, '')] = p.slice(i + 1);
  }
  return out;
}

async function importAnonymizer(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      lookup: { type: 'string' },
      'allow-partial': { type: 'boolean', default: false },
      name: { type: 'string' },
      param: { type: 'string', multiple: true, default: [] },
      extends: { type: 'string', default: 'basic' },
      standalone: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1 || !values.output) throw new DeidError('DEID_ERR_USAGE', USAGE_CTP);
  const source = resolve(positionals[0]);
  const out = resolve(values.output);
  const text = readInput(source);
  let script;
  try {
    script = parseAnonymizerScript(text);
  } catch (e) {
    if (e instanceof ScriptSyntaxError) throw new DeidError('DEID_ERR_IMPORT_SYNTAX', `${basename(source)} ${e.message}`);
    throw e;
  }
  let lookup;
  if (values.lookup) {
    const lookupPath = resolve(values.lookup);
    const rel = relative(dirname(out), lookupPath);
    lookup = { tables: parseLookupTable(readInput(lookupPath)), file: isAbsolute(rel) ? lookupPath : rel };
  }
  const name = sanitizeName(values.name ?? basename(out, extname(out)));
  const result = translateAnonymizer(script, {
    name,
    description: `Imported from the CTP script ${basename(source)} by deid import ctp`,
    params: parseParams(values.param!),
    lookup,
    base: values.standalone ? undefined : baseProfile(values.extends!, dirname(out)),
    descriptors: descriptorSelectors(),
  });
  const sum = summarize(result.accounts);
  const partial = sum.untranslatable > 0;
  const written = !partial || values['allow-partial']!;

  const entryOf = new Map<number, RuleAccount>(result.accounts.map((a) => [a.line, a]));
  const header = [
    `Imported by \`deid import ctp\` from ${basename(source)} (sha256 ${createHash('sha256').update(text).digest('hex').slice(0, 16)}…).`,
    `${sum.total} entries: ${sum.enabled} enabled, ${sum.disabled} unchecked in CTP (left as they are).`,
    `Of the enabled: ${sum.translated} translated, ${sum.approximated} approximated, ${sum.untranslatable} untranslatable (${pct(sum.share)} translated or approximated).`,
    ...(partial ? ['', 'UNTRANSLATABLE (a fail-closed stand-in is written for each):', ...groupedByNote(result.accounts.filter((a) => a.outcome === 'untranslatable')).map((g) => `  ${g}`)] : []),
    ...(sum.approximated ? ['', 'Approximated:', ...groupedByNote(result.accounts.filter((a) => a.outcome === 'approximated')).map((g) => `  ${g}`)] : []),
    '',
    ...result.notes,
    'Each rule names the CTP line it came from.',
  ];
  const p = result.profile;
  const yaml = yamlDocument(
    header,
    [
      ['name', p.name],
      ['description', p.description],
      ['extends', p.extends],
      ['options', p.options],
      ['removeUnlisted', p.removeUnlisted],
      ['dateShift', p.dateShift],
    ],
    'rules',
    (p.rules ?? []).map((rule, i) => {
      const line = result.ruleLines[i];
      return { value: rule, comment: `line ${line}: ${entryOf.get(line)?.entry ?? ''}` };
    }),
  );
  // Load it back exactly as `deid run --profile` would: schema, selectors, lookup tables, options.
  writeChecked(out, yaml, (tmp) => compileProfile(readProfileChain(tmp)), written);

  if (values.json) {
    console.log(JSON.stringify({ source, output: out, written, ...sum, accounts: result.accounts, params: result.params, notes: result.notes }, null, 2));
  } else {
    const used = result.params.filter((x) => x.used).length;
    const lines = [
      `CTP DicomAnonymizer script ${basename(source)}: ${script.elements.length} element rules, ${script.keeps.length} keep and ${script.removes.length} remove rules; ${result.params.length} parameters (${used} used)`,
      `  enabled ${sum.enabled}: translated ${sum.translated}, approximated ${sum.approximated}, untranslatable ${sum.untranslatable} — ${pct(sum.share)} translated or approximated`,
      `  unchecked in CTP: ${sum.disabled} (${values.standalone ? 'left as they are' : `left to ${values.extends} where it has a rule, else as they are`})`,
    ];
    printAccounts(lines, result.accounts);
    lines.push(...result.notes.map((n) => `note: ${n}`));
    lines.push(written ? `wrote ${out} (${(p.rules ?? []).length} rules${p.dateShift ? `, dateShift ${p.dateShift.minDays}` : ''})` : 'nothing written');
    console.log(lines.join('\n'));
  }
  return written ? 0 : partialExit(`${sum.untranslatable} of ${sum.enabled} enabled rules`);
}

async function importPixels(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      'allow-partial': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1 || !values.output) throw new DeidError('DEID_ERR_USAGE', USAGE_PIXELS);
  const source = resolve(positionals[0]);
  const out = resolve(values.output);
  const text = readInput(source);
  const result = translatePixelScript(text);
  if (result.signatures.length === 0 && result.accounts.length === 0) throw new DeidError('DEID_ERR_IMPORT_SYNTAX', `${basename(source)}: no { condition } (x,y,w,h) signature in it`);
  const count = (o: string) => result.accounts.filter((a) => a.outcome === o).length;
  const [translated, approximated, untranslatable] = [count('translated'), count('approximated'), count('untranslatable')];
  const total = result.accounts.length;
  const share = total ? (translated + approximated) / total : 1;
  const written = untranslatable === 0 || values['allow-partial']!;
  const header = [
    `Imported by \`deid import ctp-pixels\` from ${basename(source)} (sha256 ${createHash('sha256').update(text).digest('hex').slice(0, 16)}…).`,
    `${result.signatures.length} signatures. ${total} entries: ${translated} translated, ${approximated} approximated, ${untranslatable} untranslatable (${pct(share)}).`,
    ...(untranslatable ? ['', 'UNTRANSLATABLE:', ...groupedByNote(result.accounts.filter((a) => a.outcome === 'untranslatable')).map((g) => `  ${g}`)] : []),
    '',
    ...result.notes,
    'Use it from a profile: pixels: { signatureFiles: [this-file.yaml] } with the clean-pixel-data option.',
  ];
  const yaml = signaturesDocument(
    header,
    result.signatures.map((s, i) => ({ signature: s as unknown as Record<string, unknown>, comment: `line ${result.signatureLines[i]}: ${result.accounts.find((a) => a.line === result.signatureLines[i])?.entry ?? ''}` })),
  );
  // Load it back as a profile's signatureFiles entry would be, and through the profile schema.
  writeChecked(
    out,
    yaml,
    (tmp) => {
      const profile = resolve(dirname(tmp), `.${basename(tmp)}.profile.yaml`);
      writeFileSync(profile, `name: signature-check\nextends: basic\noptions: [clean-pixel-data]\npixels:\n  builtinSignatures: false\n  signatureFiles: [${JSON.stringify(basename(tmp))}]\n`);
      try {
        const compiled = compileProfile(readProfileChain(profile));
        if (compiled.pixels?.signatures.length !== result.signatures.length) throw new Error('signature count differs after loading');
        result.signatures.forEach((s, i) => compileSignature(s, `#${i + 1}`));
      } finally {
        rmSync(profile, { force: true });
      }
    },
    written,
  );
  if (values.json) {
    console.log(JSON.stringify({ source, output: out, written, signatures: result.signatures.length, total, translated, approximated, untranslatable, share, accounts: result.accounts, notes: result.notes }, null, 2));
  } else {
    const lines = [
      `CTP DicomPixelAnonymizer script ${basename(source)}: ${result.signatures.length} signatures`,
      `  ${total} entries: translated ${translated}, approximated ${approximated}, untranslatable ${untranslatable} — ${pct(share)} translated or approximated`,
    ];
    printAccounts(lines, result.accounts);
    lines.push(...result.notes.map((n) => `note: ${n}`));
    lines.push(written ? `wrote ${out}` : 'nothing written');
    console.log(lines.join('\n'));
  }
  return written ? 0 : partialExit(`${untranslatable} of ${total} entries`);
}

export async function importCommand(argv: string[]): Promise<number> {
  const [what, ...rest] = argv;
  if (what === 'ctp') return importAnonymizer(rest);
  if (what === 'ctp-pixels') return importPixels(rest);
  throw new DeidError('DEID_ERR_USAGE', `import takes ctp or ctp-pixels:\n  ${USAGE_CTP}\n  ${USAGE_PIXELS}`);
}
