// Reads nginx.conf the way NGINX's tokenizer does (ngx_conf_read_token), so tests can check what NGINX would see:
// which directives, with which arguments, in which blocks. Tests only; the controller trusts `nginx -t`.

export interface Directive {
  name: string;
  args: string[];
  block?: Directive[];
  line: number;
}

export class NginxSyntaxError extends Error {}

const UNESCAPE: Record<string, string> = { '"': '"', "'": "'", '\\': '\\', t: '\t', r: '\r', n: '\n' };

export function parseNginxConf(text: string): Directive[] {
  let i = 0;
  let line = 1;
  const fail = (message: string): never => {
    throw new NginxSyntaxError(`line ${line}: ${message}`);
  };

  /** The next token, or a structural character (';', '{', '}'), or undefined at the end. */
  const next = (): { token: string; structural: boolean } | undefined => {
    for (;;) {
      while (i < text.length && /\s/.test(text[i]!)) if (text[i++] === '\n') line++;
      if (text[i] !== '#') break;
      while (i < text.length && text[i] !== '\n') i++;
    }
    if (i >= text.length) return undefined;
    const c = text[i]!;
    if (c === ';' || c === '{' || c === '}') {
      i++;
      return { token: c, structural: true };
    }
    let token = '';
    if (c === '"' || c === "'") {
      i++;
      for (;;) {
        if (i >= text.length) fail('unterminated quoted string');
        const d = text[i++]!;
        if (d === '\n') line++;
        if (d === c) break;
        if (d === '\\' && UNESCAPE[text[i]!] !== undefined) token += UNESCAPE[text[i++]!];
        else token += d;
      }
      // NGINX wants a separator right after a closing quote.
      if (i < text.length && !/[\s;{}]/.test(text[i]!)) fail(`unexpected "${text[i]}" after a quoted string`);
      return { token, structural: false };
    }
    while (i < text.length && !/[\s;{}]/.test(text[i]!)) {
      const d = text[i++]!;
      if (d === '\\' && i < text.length) token += text[i++];
      else if (d === '$' && text[i] === '{') {
        const end = text.indexOf('}', i);
        if (end < 0) fail('unterminated ${');
        token += text.slice(i - 1, end + 1);
        i = end + 1;
      } else token += d;
    }
    return { token, structural: false };
  };

  /**
   * The Lua source of a *_by_lua_block, up to its closing brace, as the Lua module reads it: braces inside Lua strings,
   * long brackets and comments do not count.
   */
  const luaBlock = (): string => {
    const start = i;
    let depth = 1;
    /** Skips a long bracket ([[...]], [==[...]==]) at i, if there is one. */
    const longBracket = (): boolean => {
      const open = /^\[(=*)\[/.exec(text.slice(i, i + 64));
      if (!open) return false;
      const close = `]${open[1]}]`;
      const end = text.indexOf(close, i);
      if (end < 0) fail('unterminated Lua long bracket');
      line += text.slice(i, end).split('\n').length - 1;
      i = end + close.length;
      return true;
    };
    while (i < text.length) {
      const c = text[i]!;
      if (c === '-' && text[i + 1] === '-') {
        i += 2;
        if (!longBracket()) while (i < text.length && text[i] !== '\n') i++;
      } else if (c === '[' && longBracket()) {
        continue;
      } else if (c === '"' || c === "'") {
        i++;
        while (i < text.length && text[i] !== c) {
          if (text[i] === '\n') fail('newline in a Lua string');
          i += text[i] === '\\' ? 2 : 1;
        }
        if (i >= text.length) fail('unterminated Lua string');
        i++;
      } else {
        if (c === '\n') line++;
        if (c === '{') depth++;
        if (c === '}' && --depth === 0) return text.slice(start, i++);
        i++;
      }
    }
    return fail('unterminated Lua block');
  };

  const block = (nested: boolean): Directive[] => {
    const directives: Directive[] = [];
    let words: string[] = [];
    let startLine = line;
    for (;;) {
      const t = next();
      if (t === undefined) {
        if (nested || words.length > 0) fail('unexpected end of file');
        return directives;
      }
      if (!t.structural) {
        if (words.length === 0) startLine = line;
        words.push(t.token);
        continue;
      }
      if (t.token === '}') {
        if (!nested || words.length > 0) fail('unexpected "}"');
        return directives;
      }
      if (words.length === 0) fail(`unexpected "${t.token}"`);
      const [name, ...args] = words;
      words = [];
      if (t.token === '{' && name!.endsWith('_by_lua_block')) {
        directives.push({ name: name!, args: [...args, luaBlock()], line: startLine });
        continue;
      }
      directives.push(t.token === '{' ? { name: name!, args, block: block(true), line: startLine } : { name: name!, args, line: startLine });
    }
  };
  return block(false);
}
