/**
 * The function language of a CTP DicomAnonymizer element script, parsed into text and calls:
 *
 *   @hashuid(@UIDROOT,this)                  a call with arguments
 *   @if(this,isblank){@remove()}{Removed}    @if and @select take a true and a false clause
 *   @always()@append(){CTP: @param(@NAME)}   @append takes one clause
 *   Project-@hash(this,10)                   text and calls mixed
 *
 * `\` escapes the next character; arguments may be double-quoted. This mirrors how CTP splits a
 * script, so that a translation sees the same calls CTP would execute.
 */
export type ScriptNode =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'call'; readonly name: string; readonly args: readonly string[]; readonly clauses: ReadonlyArray<readonly ScriptNode[]> };

export class ScriptExprError extends Error {}

const CLAUSES: Record<string, number> = { if: 2, select: 2, append: 1 };

/** Index of the delimiter that closes what starts at `from`, honouring quotes, escapes, brackets and nesting. */
function findClose(s: string, from: number, delims: string, open: string): number {
  let depth = 1;
  let brackets = 0;
  let quoted = false;
  for (let k = from; k < s.length; k++) {
    const c = s[k];
    if (c === '\\') {
      k++;
      continue;
    }
    if (quoted) {
      if (c === '"') quoted = false;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === '[') brackets++;
    else if (c === ']') brackets--;
    else if (c === open) depth++;
    else if (delims.includes(c) && brackets === 0 && --depth === 0) return k;
  }
  return -1;
}

function splitArgs(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let depth = 0;
  let quoted = false;
  for (let k = 0; k < s.length; k++) {
    const c = s[k];
    if (c === '\\' && k + 1 < s.length) {
      cur += c + s[++k];
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (!quoted && (c === '(' || c === '[')) depth++;
    if (!quoted && (c === ')' || c === ']')) depth--;
    if (!quoted && depth === 0 && c === ',') {
      out.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  if (cur.trim() || out.length) out.push(cur.trim());
  return out;
}

export function parseScriptExpr(script: string): ScriptNode[] {
  const nodes: ScriptNode[] = [];
  let text = '';
  const flush = () => {
    if (text) nodes.push({ kind: 'text', text });
    text = '';
  };
  let i = 0;
  while (i < script.length) {
    const c = script[i];
    if (c === '\\') {
      if (i + 1 < script.length) text += script[i + 1];
      i += 2;
      continue;
    }
    if (c !== '@') {
      text += c;
      i++;
      continue;
    }
    const paren = script.indexOf('(', i + 1);
    const name = paren < 0 ? '' : script.slice(i + 1, paren).replace(/\s/g, '');
    if (!/^[A-Za-z]+$/.test(name)) throw new ScriptExprError(`malformed function call at "${script.slice(i, i + 24)}"`);
    const close = findClose(script, paren + 1, ')', '(');
    if (close < 0) throw new ScriptExprError(`@${name}( is not closed`);
    const args = splitArgs(script.slice(paren + 1, close));
    let end = close + 1;
    const clauses: ScriptNode[][] = [];
    for (let n = 0; n < (CLAUSES[name] ?? 0); n++) {
      const ob = script.indexOf('{', end);
      // CTP tolerates a missing false clause; it then means empty text.
      if (ob < 0 || script.slice(end, ob).trim()) {
        if (n === 0) throw new ScriptExprError(`@${name} needs a {clause}`);
        break;
      }
      const cb = findClose(script, ob + 1, '}', '{');
      if (cb < 0) throw new ScriptExprError(`a {clause} of @${name} is not closed`);
      clauses.push(parseScriptExpr(script.slice(ob + 1, cb)));
      end = cb + 1;
    }
    flush();
    nodes.push({ kind: 'call', name, args, clauses });
    i = end;
  }
  flush();
  return nodes;
}

/** A CTP argument without its double quotes. */
export const unquote = (arg: string): string => (arg.length >= 2 && arg.startsWith('"') && arg.endsWith('"') ? arg.slice(1, -1) : arg);
