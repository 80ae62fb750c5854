// Property: whatever an Ingress holds, the rendered nginx.conf parses (as NGINX tokenizes it) to exactly the directives
// the model allows, in the blocks it allows them, with user values as whole arguments. fast-check generates hostile
// hosts, paths, names and annotation values and shrinks any counterexample.
import fc from 'fast-check';
import { buildModel } from '../model/build.js';
import { translateIngress, type IngressIntent } from '../model/ingress.js';
import { BUILTIN_TLS_DEFAULTS } from '../model/pq.js';
import { CAPABILITIES } from '../model/testing.js';
import type { Location, Model } from '../model/types.js';
import { hostileClusterState, hostileIngress } from './hostile-ingress.js';
import { parseNginxConf, type Directive } from './nginx-syntax.js';
import { render } from './render.js';
import { inlined, RENDER_SETTINGS } from './testing.js';

const RUNS = 2000;
const NOW = new Date('2026-11-28T00:00:00Z');

/** Directive names allowed in each kind of block; anything else means input leaked into the configuration. */
const ALLOWED: Record<string, RegExp> = {
  main: /^(worker_processes|pid|error_log|load_module|events|stream|http)$/,
  events: /^worker_connections$/,
  stream: /^(map|server)$/,
  'stream server': /^(listen|ssl_preread|proxy_pass|proxy_protocol)$/,
  http: /^(server_names_hash_(bucket|max)_size|map_hash_(bucket|max)_size|map|log_format|access_log|server_tokens|(client_body|proxy|fastcgi|uwsgi|scgi)_temp_path|ssl_prefer_server_ciphers|ssl_session_cache|ssl_certificate_cache|proxy_http_version|client_max_body_size|proxy_(connect|read|send)_timeout|proxy_buffer_size|limit_(req|conn)_status|absolute_redirect|proxy_set_header|set_real_ip_from|real_ip_header|limit_req_zone|limit_conn_zone|lua_package_path|lua_shared_dict|init_by_lua_block|upstream|server)$/,
  upstream: /^(server|balancer_keepalive|balancer_by_lua_block)$/,
  server: /^(server_name|listen|http2|ssl_(protocols|ecdh_curve|prefer_server_ciphers|conf_command|certificate|certificate_key|verify_client|verify_depth|client_certificate)|ssl_certificate_by_lua_block|server_rewrite_by_lua_block|return|location|access_log)$/,
  location: /^(if|set|deny|allow|limit_req|limit_conn|add_header|return|rewrite|client_max_body_size|client_body_buffer_size|error_page|proxy_buffers|(access|content)_by_lua_block|(proxy|grpc)_(pass|set_header|buffer_size|connect_timeout|read_timeout|send_timeout|intercept_errors|ssl_(protocols|conf_command|server_name|name|session_reuse|verify|verify_depth|trusted_certificate|certificate|certificate_key)))$/,
  if: /^(return|add_header)$/,
};
const CHILD_CONTEXT: Record<string, Record<string, string>> = {
  main: { events: 'events', stream: 'stream', http: 'http' },
  stream: { server: 'stream server', map: 'map' },
  http: { server: 'server', upstream: 'upstream', map: 'map' },
  server: { location: 'location' },
  location: { if: 'if' },
};

const LUA_NAME = '"[A-Za-z0-9_.-]+"';
/** The only Lua the configuration may hold: calls of the qubesec module with numbers and plain names. */
const LUA_CALL = new RegExp(`^\\s*require\\("qubesec"\\)\\.(init\\("[A-Za-z0-9_./-]+"\\)|update\\(\\)|update_new_hosts\\(\\)|certificate\\("[A-Za-z0-9_./,-]+"\\)|new_host_rewrite\\(\\)|new_host\\(\\)|load_report\\(\\)|route\\([0-9]{3}(, ${LUA_NAME})?\\)|balance\\(\\))\\s*$`);

function checkBlock(directives: Directive[], context: string): void {
  for (const d of directives) {
    if (d.name.endsWith('_by_lua_block') && !LUA_CALL.test(d.args.join(' '))) throw new Error(`${d.name} (line ${d.line}) holds unexpected Lua: ${d.args.join(' ')}`);
    if (context === 'map') {
      // A map entry: the source value and the result, nothing else, no block (or the flag `hostnames`).
      expect({ entry: d.name, args: d.args.length, block: d.block }).toEqual({ entry: d.name, args: d.name === 'hostnames' ? 0 : 1, block: undefined });
      continue;
    }
    if (!ALLOWED[context]!.test(d.name)) throw new Error(`directive ${JSON.stringify(d.name)} (line ${d.line}) is not allowed in ${context}`);
    // A server's OpenSSL command may only order signature algorithms, and only with names OpenSSL prints.
    if (context === 'server' && d.name === 'ssl_conf_command' && !(d.args.length === 2 && d.args[0] === 'SignatureAlgorithms' && /^[a-z0-9_]+(:[a-z0-9_]+)*$/.test(d.args[1]!))) {
      throw new Error(`ssl_conf_command (line ${d.line}) sets more than the signature algorithms: ${d.args.join(' ')}`);
    }
    const child = CHILD_CONTEXT[context]?.[d.name];
    if ((child !== undefined) !== (d.block !== undefined)) throw new Error(`directive ${d.name} (line ${d.line}) ${d.block ? 'has' : 'lacks'} a block`);
    if (child !== undefined) checkBlock(d.block!, child);
  }
}

function locationArgs(l: Location): string[] {
  return l.match === 'exact' ? ['=', l.path] : l.match === 'regex' ? ['~*', l.path] : [l.path];
}

const directive = (block: Directive[], name: string) => block.filter((d) => d.name === name);

/** Every model server and location appears once, with the user's values as whole arguments. */
function checkAgainstModel(tree: Directive[], model: Model): void {
  const http = directive(tree, 'http')[0]!.block!;
  const servers = directive(http, 'server');
  for (const server of model.servers) {
    // The catch-all's name is a regular expression that matches any name (NGINX tries it last).
    const name = server.host === '' ? '~^' : server.host;
    const matches = servers.filter((s) => directive(s.block!, 'server_name')[0]?.args[0] === name && directive(s.block!, 'listen').some((l) => l.args[0] === '80'));
    expect(matches.length).toBe(1);
    const block = matches[0]!.block!;
    expect(directive(block, 'server_name')[0]!.args).toEqual([name]);
    const locations = directive(block, 'location');
    for (const location of server.locations) {
      const rendered = locations.filter((d) => JSON.stringify(d.args) === JSON.stringify(locationArgs(location)));
      expect(rendered.length).toBe(1);
      const body = rendered[0]!.block!;
      const { action, policy } = location;
      if (action.kind === 'redirect') expect(directive(body, 'return').map((d) => d.args)).toEqual([[String(action.code), action.url]]);
      if (action.kind === 'proxy' && action.rewrite) expect(directive(body, 'rewrite').map((d) => d.args)).toEqual([[`(?i)${location.path}`, action.rewrite, 'break']]);
      // The one variable a location sets names its upstreams, the model's names as one argument; before any rewrite,
      // which would end the rewrite directives and leave it unset.
      if (action.kind === 'proxy') {
        expect(directive(body, 'set').map((d) => d.args)).toEqual([['$qubesec_upstreams', [action.upstream, ...(action.fallback ? [action.fallback] : [])].join(' ')]]);
        const rewriteAt = body.findIndex((d) => d.name === 'rewrite');
        if (rewriteAt >= 0) expect(body.findIndex((d) => d.name === 'set')).toBeLessThan(rewriteAt);
      } else expect(directive(body, 'set')).toEqual([]);
      expect(directive(body, 'allow').map((d) => d.args[0])).toEqual(policy.allow);
    }
    const extra = locations.filter((d) => !server.locations.some((l) => JSON.stringify(d.args) === JSON.stringify(locationArgs(l))));
    for (const d of extra) expect(d.args.length === 1 && (d.args[0] === '/' || d.args[0]!.startsWith('@qubesec_error_') || (server.host === '' && d.args[0] === '@qubesec_new_host'))).toBe(true);
  }
}

describe('rendering hostile Ingresses', () => {
  const state = hostileClusterState(NOW);

  it(`renders only allowed directives with user values as whole arguments (${RUNS} cases)`, () => {
    const counts = { cases: 0, accepted: 0, rejected: 0, locations: 0 };
    fc.assert(
      fc.property(fc.array(hostileIngress, { minLength: 1, maxLength: 3 }), (ingresses) => {
        counts.cases++;
        const intents: IngressIntent[] = [];
        for (const ingress of ingresses) {
          const t = translateIngress(ingress, BUILTIN_TLS_DEFAULTS, CAPABILITIES);
          if (t.intent) intents.push(t.intent);
          else {
            counts.rejected++;
            // A rejection names the Ingress.
            expect(t.diagnostics.some((d) => d.reason === 'Rejected' && d.message.startsWith(`Ingress default/${ingress.metadata!.name}: `))).toBe(true);
          }
        }
        counts.accepted += intents.length;
        const { model } = buildModel({ ...state, intents });
        counts.locations += model.servers.reduce((n, s) => n + s.locations.length, 0);
        const tree = parseNginxConf(inlined(render(model, RENDER_SETTINGS)));
        checkBlock(tree, 'main');
        checkAgainstModel(tree, model);
      }),
      { numRuns: RUNS, verbose: process.env.QUBESEC_FUZZ_SEED !== undefined, seed: Number(process.env.QUBESEC_FUZZ_SEED ?? Date.now() % 2 ** 31) },
    );
    console.log(`fuzz: ${counts.cases} cases, ${counts.accepted} Ingresses accepted and rendered (${counts.locations} locations), ${counts.rejected} rejected`);
    expect(counts.accepted).toBeGreaterThan(RUNS / 10);
    expect(counts.rejected).toBeGreaterThan(RUNS / 4);
  });
});

describe('parseNginxConf', () => {
  it('reads directives, blocks, quotes and escapes as NGINX does', () => {
    const tree = parseNginxConf('a 1 "two words" \'q\\\'s\';\n# comment\nb { c "x;y{z}" ${v}w; }\n');
    expect(tree.map((d) => [d.name, d.args, d.block?.map((c) => [c.name, c.args])])).toEqual([
      ['a', ['1', 'two words', "q's"], undefined],
      ['b', [], [['c', ['x;y{z}', '${v}w']]]],
    ]);
  });

  it('reads a *_by_lua_block as one Lua argument, braces in strings and comments included', () => {
    const tree = parseNginxConf('u { balancer_by_lua_block {\n  f("}{", \'{\') -- }\n  t = { [[}]] }\n}\nkeepalive 2; }');
    expect(tree[0]!.block!.map((d) => [d.name, d.args])).toEqual([
      ['balancer_by_lua_block', ['\n  f("}{", \'{\') -- }\n  t = { [[}]] }\n']],
      ['keepalive', ['2']],
    ]);
  });

  it.each(['a "x"y;', 'a {', 'a }', '}', 'a "open;', 'a;;', 'b_by_lua_block { "}', 'b_by_lua_block { { }'])('refuses %j', (text) => {
    expect(() => parseNginxConf(text)).toThrow();
  });
});
