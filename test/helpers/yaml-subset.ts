/**
 * A strict reader for the YAML subset custos's docker/ files are written in (no YAML parser is
 * a dependency): block mappings and sequences by indentation, `- key: value` items, plain,
 * single- and double-quoted scalars, flow sequences of scalars, `{}` / `[]`, comments.
 * Anything else (block scalars, anchors, aliases, tags, tabs, flow mappings) throws, so a
 * file outside the subset fails its test instead of being misread. Scalars stay strings.
 */
export type YamlValue = string | YamlValue[] | { [key: string]: YamlValue };

interface Line {
  indent: number;
  text: string;
  no: number;
}

/** Parses `text`; throws naming the line of anything outside the subset. */
export function parseYamlSubset(text: string): YamlValue {
  const lines: Line[] = [];
  text.split("\n").forEach((raw, i) => {
    if (raw.includes("\t")) throw new Error(`line ${i + 1}: tab`);
    const text = stripComment(raw).trimEnd();
    if (text.trim() !== "") lines.push({ indent: text.length - text.trimStart().length, text: text.trim(), no: i + 1 });
  });
  if (lines.length === 0) return {};
  const pos = { i: 0 };
  const value = block(lines, pos, lines[0]!.indent);
  if (pos.i < lines.length) throw new Error(`line ${lines[pos.i]!.no}: unexpected indentation`);
  return value;
}

function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

function block(lines: Line[], pos: { i: number }, indent: number): YamlValue {
  const first = lines[pos.i]!;
  return first.text === "-" || first.text.startsWith("- ") ? sequence(lines, pos, indent) : mapping(lines, pos, indent);
}

function sequence(lines: Line[], pos: { i: number }, indent: number): YamlValue[] {
  const out: YamlValue[] = [];
  while (pos.i < lines.length && lines[pos.i]!.indent === indent && (lines[pos.i]!.text === "-" || lines[pos.i]!.text.startsWith("- "))) {
    const line = lines[pos.i]!;
    const rest = line.text.slice(1).trimStart();
    if (rest === "") {
      pos.i++;
      out.push(nested(lines, pos, indent, line));
    } else if (isMappingEntry(rest)) {
      // "- key: value": the item is a mapping whose first key sits two columns in.
      lines[pos.i] = { indent: indent + 2, text: rest, no: line.no };
      out.push(mapping(lines, pos, indent + 2));
    } else {
      pos.i++;
      out.push(scalar(rest, line.no));
    }
  }
  return out;
}

function mapping(lines: Line[], pos: { i: number }, indent: number): { [key: string]: YamlValue } {
  const out: { [key: string]: YamlValue } = {};
  while (pos.i < lines.length && lines[pos.i]!.indent === indent) {
    const line = lines[pos.i]!;
    if (!isMappingEntry(line.text)) throw new Error(`line ${line.no}: expected "key: value"`);
    const colon = keyEnd(line.text);
    const key = unquote(line.text.slice(0, colon).trim(), line.no);
    if (key in out) throw new Error(`line ${line.no}: duplicate key ${key}`);
    const rest = line.text.slice(colon + 1).trim();
    pos.i++;
    if (rest !== "") out[key] = scalar(rest, line.no);
    else if (pos.i < lines.length && lines[pos.i]!.indent === indent && lines[pos.i]!.text.startsWith("- ")) out[key] = sequence(lines, pos, indent);
    else out[key] = nested(lines, pos, indent, line);
  }
  if (pos.i < lines.length && lines[pos.i]!.indent > indent) throw new Error(`line ${lines[pos.i]!.no}: unexpected indentation`);
  return out;
}

/** The block under `parent`, or "" when nothing is indented under it (a key with no value). */
function nested(lines: Line[], pos: { i: number }, indent: number, parent: Line): YamlValue {
  const next = lines[pos.i];
  if (next === undefined || next.indent <= indent) return "";
  if (next.no === parent.no) throw new Error(`line ${parent.no}: nesting`);
  return block(lines, pos, next.indent);
}

function isMappingEntry(text: string): boolean {
  return keyEnd(text) > 0;
}

/** Index of the colon ending a mapping key (followed by a space or the line's end), or -1. */
function keyEnd(text: string): number {
  if (text.startsWith('"') || text.startsWith("'")) {
    const close = text.indexOf(text[0]!, 1);
    return close > 0 && text[close + 1] === ":" && (close + 2 === text.length || text[close + 2] === " ") ? close + 1 : -1;
  }
  if (text.startsWith("[") || text.startsWith("{")) return -1;
  const m = /^[^:]*?:(?= |$)/.exec(text);
  return m ? m[0].length - 1 : -1;
}

function scalar(text: string, no: number): YamlValue {
  if (/^[|>&*!%@`]/.test(text)) throw new Error(`line ${no}: ${text[0]} is outside the subset`);
  if (text === "{}") return {};
  if (text.startsWith("{")) throw new Error(`line ${no}: flow mapping`);
  if (text.startsWith("[")) {
    if (!text.endsWith("]")) throw new Error(`line ${no}: unterminated flow sequence`);
    return splitFlow(text.slice(1, -1), no).map((s) => scalar(s, no));
  }
  return unquote(text, no);
}

function unquote(text: string, no: number): string {
  if (text.startsWith('"')) {
    if (!text.endsWith('"') || text.length < 2) throw new Error(`line ${no}: unterminated string`);
    return JSON.parse(text) as string;
  }
  if (text.startsWith("'")) {
    if (!text.endsWith("'") || text.length < 2) throw new Error(`line ${no}: unterminated string`);
    return text.slice(1, -1).replaceAll("''", "'");
  }
  return text;
}

/** Items of a flow sequence's inside, split at commas outside quotes. */
function splitFlow(inside: string, no: number): string[] {
  const items: string[] = [];
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < inside.length; i++) {
    const c = inside[i]!;
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "[" || c === "{") throw new Error(`line ${no}: nested flow collection`);
    else if (c === ",") {
      items.push(inside.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = inside.slice(start).trim();
  if (last !== "") items.push(last);
  return items;
}
