// Each ingress-nginx compatible annotation: how it parses, what it refuses, and what it renders.
import { render } from '../render/render.js';
import { inlined, RENDER_SETTINGS } from '../render/testing.js';
import { ANNOTATION_CASES, annotatedModel, BAD_VALUES } from './proxy-annotations.cases.js';
import { INGRESS_NGINX_PREFIX as N, parseProxyAnnotations, PROXY_ANNOTATIONS } from './proxy-annotations.js';

const parse = (annotations: Record<string, string>, hasDefaultBackend = false) => parseProxyAnnotations(annotations, 'default', hasDefaultBackend);

const renderWith = (annotations: Record<string, string>) => inlined(render(annotatedModel(annotations), RENDER_SETTINGS));

describe('proxy annotations', () => {
  it('has a case and a bad value for every annotation', () => {
    expect(Object.keys(ANNOTATION_CASES).sort()).toEqual(Object.keys(PROXY_ANNOTATIONS).sort());
    expect(Object.keys(BAD_VALUES).sort()).toEqual(Object.keys(PROXY_ANNOTATIONS).sort());
  });

  describe.each(Object.keys(ANNOTATION_CASES))('%s', (name) => {
    const c = ANNOTATION_CASES[name]!;
    it('parses', () => {
      const r = parse(c.annotations, false);
      expect(r.errors).toEqual([]);
      expect(r.settings).toEqual(expect.objectContaining(c.settings));
    });

    it('reads the qubesec.io/ spelling the same way', () => {
      const renamed = Object.fromEntries(Object.entries(c.annotations).map(([k, v]) => [k.replace(N, 'qubesec.io/'), v]));
      expect(parse(renamed).settings).toEqual(parse(c.annotations).settings);
    });

    it('renders', () => {
      const config = renderWith(c.annotations).split('\n').map((l) => l.trim());
      for (const line of c.rendered) expect(config.some((l) => l.startsWith(line))).toBe(true);
    });

    it('refuses a bad value, naming the annotation', () => {
      const [value, message] = BAD_VALUES[name]!;
      const r = parse({ ...c.annotations, [`${N}${name}`]: value });
      expect(r.errors).toEqual([expect.stringMatching(new RegExp(`^annotation ${N}${name}: .*${message.source}`))]);
    });
  });

  it.each(['/x/${uri}', '/${host}$1', '/$host/$1?${args}'])('takes the rewrite-target %j as NGINX reads it', (target) => {
    expect(parse({ [`${N}rewrite-target`]: target }).settings.rewrite).toBe(target);
    expect(renderWith({ [`${N}rewrite-target`]: target })).toContain(`rewrite "(?i)^/app(/|$)(.*)" "${target}" break;`);
  });

  it.each(['/{$host}', '/a{$uri}b'])('refuses the rewrite-target %j, which is no variable it allows', (target) => {
    expect(parse({ [`${N}rewrite-target`]: target }).errors).toEqual([expect.stringMatching(/is not a path starting with "\/"/)]);
  });

  it('lets qubesec.io/ win over nginx.ingress.kubernetes.io/', () => {
    expect(parse({ [`${N}proxy-read-timeout`]: '10', 'qubesec.io/proxy-read-timeout': '20' }).settings.tuning.readTimeout).toBe(20);
  });

  it('warns about settings that do nothing as combined', () => {
    expect(parse({ [`${N}cors-allow-origin`]: '*', [`${N}session-cookie-name`]: 'x', [`${N}proxy-ssl-verify`]: 'on' }).warnings).toEqual([
      `annotation ${N}session-cookie-name has no effect without affinity: cookie`,
      `annotation ${N}cors-allow-origin has no effect without enable-cors: "true"`,
      `annotation ${N}proxy-ssl-verify has no effect with backend-protocol HTTP (only HTTPS and GRPCS)`,
    ]);
  });

  it('reads a Secret of a namespace that starts with a digit (an RFC 1123 label)', () => {
    expect(parse({ [`${N}auth-tls-secret`]: '1team/ca' }, false).errors).toEqual([`annotation ${N}auth-tls-secret: Secret 1team/ca is not in the Ingress's namespace default`]);
  });

  it('refuses Secrets of another namespace and checks that go without their CA', () => {
    expect(parse({ [`${N}auth-tls-secret`]: 'kube-system/ca' }).errors).toEqual([`annotation ${N}auth-tls-secret: Secret kube-system/ca is not in the Ingress's namespace default`]);
    expect(parse({ [`${N}auth-tls-verify-client`]: 'on' }).errors).toEqual([`annotation ${N}auth-tls-verify-client: on needs ${N}auth-tls-secret (a Secret with ca.crt)`]);
    expect(parse({ [`${N}backend-protocol`]: 'HTTPS', [`${N}proxy-ssl-verify`]: 'on' }).errors).toEqual([`annotation ${N}proxy-ssl-verify: on needs ${N}proxy-ssl-secret (a Secret with ca.crt)`]);
    expect(parse({ [`${N}permanent-redirect`]: 'https://a.com', [`${N}temporal-redirect`]: 'https://b.com' }).errors).toEqual([`annotations ${N}permanent-redirect and ${N}temporal-redirect: set one, not both`]);
    expect(parse({ [`${N}custom-http-errors`]: '404' }).errors).toEqual([`annotation ${N}custom-http-errors: needs ${N}default-backend or the controller's --default-backend-service to serve the error pages`]);
    expect(parse({ [`${N}custom-http-errors`]: '404' }, true).errors).toEqual([]);
  });
});
