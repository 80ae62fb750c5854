// Every flag, annotation, metric and Helm value the code defines has a row in docs/: this test fails when one is missing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHECK_OPTIONS } from './cli/check.js';
import { Registry } from 'prom-client';
import { SIGN_OPTIONS, VERIFY_OPTIONS } from './cli/signatures.js';
import { parse } from 'yaml';
import { FLAGS } from './config.js';
import { ANNOTATION_KEYS, ANNOTATION_PREFIX, UNSUPPORTED_ACCESS_CONTROL } from './model/annotations.js';
import { INGRESS_NGINX_PREFIX } from './model/proxy-annotations.js';
import { createAuditMetrics, createMetrics } from './observability/metrics.js';
import { PROJECT_ROOT } from './project.js';
import { QRNG_FEED_FLAGS, QRNG_SERVE_FLAGS } from './qrng/flags.js';
import { createQrngMetrics } from './qrng/metrics.js';
import { AUDIT_SERVE_FLAGS, AUDIT_SHOW_OPTIONS, AUDIT_VERIFY_OPTIONS } from './signatures/audit/cli.js';
import { SIGNATURE_ANNOTATION_PREFIX } from './signatures/objects.js';
import { VPN_OPTIONS } from './cli/vpn.js';
import { MIGRATE_OPTIONS } from './cli/migrate.js';
import { ANNOTATION_MIGRATION } from './migrate/gateway-api.js';
import { createVpnMetrics } from './vpn/metrics.js';

const doc = (name: string) => readFileSync(join(PROJECT_ROOT, 'docs', name), 'utf8');

/** Dotted paths of values.yaml's leaves: scalars, lists and empty maps. */
function valuePaths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.keys(value).length === 0) return [prefix];
  return Object.entries(value).flatMap(([key, child]) => valuePaths(child, prefix ? `${prefix}.${key}` : key));
}

describe('docs', () => {
  it('list every controller flag', () => {
    const flags = doc('flags.md');
    expect(Object.keys(FLAGS).filter((f) => !flags.includes(`\`--${f}\``))).toEqual([]);
  });

  it('list every flag of qubesec qrng serve and feed, each in its own section', () => {
    const flags = doc('flags.md');
    const section = (title: string) => flags.slice(flags.indexOf(`## ${title}`)).split(/\n## /)[0]!;
    for (const [title, set] of [['qubesec qrng serve', QRNG_SERVE_FLAGS], ['qubesec qrng feed', QRNG_FEED_FLAGS]] as const) {
      expect(section(title)).toContain(title);
      expect(Object.keys(set).filter((f) => f !== 'help' && !section(title).includes(`| \`--${f}\` |`))).toEqual([]);
    }
  });

  it('list every flag of qubesec check', () => {
    const check = doc('check.md');
    expect(Object.keys(CHECK_OPTIONS).filter((f) => f !== 'help' && !check.includes(`\`--${f}`))).toEqual([]);
  });

  it('list every flag of qubesec migrate, and how each annotation carries over to Gateway API', () => {
    const migrating = doc('migrating.md');
    expect(Object.keys(MIGRATE_OPTIONS).filter((f) => f !== 'help' && !migrating.includes(`| \`--${f}\` |`))).toEqual([]);
    expect(Object.keys(ANNOTATION_MIGRATION).filter((a) => !migrating.includes(`| \`${a}\` |`))).toEqual([]);
  });

  it('list every flag of qubesec vpn', () => {
    const vpn = doc('vpn.md');
    expect(Object.keys(VPN_OPTIONS).filter((f) => f !== 'help' && !vpn.includes(`| \`--${f}\` |`))).toEqual([]);
  });

  it.each([
    ['VPN', createVpnMetrics, 3],
    ['QRNG', createQrngMetrics, 5],
  ] as const)('list every %s metric', async (_system, create, atLeast) => {
    const registry = new Registry();
    create(registry);
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names.length).toBeGreaterThan(atLeast);
    expect(names.filter((n) => !doc('metrics.md').includes(`\`${n}\``))).toEqual([]);
  });

  it('list every flag of qubesec audit serve, verify and show', () => {
    const serve = doc('flags.md').split('## qubesec audit serve')[1] ?? '';
    expect(Object.keys(AUDIT_SERVE_FLAGS).filter((f) => !serve.includes(`\`--${f}\``))).toEqual([]);
    const audit = doc('signatures.md').split('## The audit trail')[1] ?? '';
    expect(Object.keys({ ...AUDIT_VERIFY_OPTIONS, ...AUDIT_SHOW_OPTIONS }).filter((f) => !audit.includes(`\`--${f}`))).toEqual([]);
  });

  it('list every flag of qubesec sign and qubesec verify, and the signature annotation', () => {
    const signatures = doc('signatures.md');
    const rows = (command: string) => [...signatures.matchAll(/^\| `--([a-z-]+)[^`]*` \| ([a-z, ]+) \|/gm)].filter((m) => m[2]!.split(', ').includes(command) || m[2] === 'both').map((m) => m[1]);
    expect(Object.keys(SIGN_OPTIONS).filter((f) => !rows('sign').includes(f))).toEqual([]);
    expect(Object.keys(VERIFY_OPTIONS).filter((f) => !rows('verify').includes(f))).toEqual([]);
    expect(doc('annotations.md')).toContain(`\`${SIGNATURE_ANNOTATION_PREFIX}<keyId>\``);
  });

  it('list every annotation', () => {
    const annotations = doc('annotations.md');
    expect(ANNOTATION_KEYS.length).toBeGreaterThan(0);
    // Annotations read under both prefixes have one row, spelled as ingress-nginx users know them.
    const documented = (a: string) => annotations.includes(`\`${a}\``) || annotations.includes(`\`${a.replace(ANNOTATION_PREFIX, INGRESS_NGINX_PREFIX)}\``);
    expect(ANNOTATION_KEYS.filter((a) => !documented(a))).toEqual([]);
    expect(UNSUPPORTED_ACCESS_CONTROL.filter((a) => !annotations.includes(`\`${a}\``))).toEqual([]);
  });

  it('list every metric QubeSec defines', async () => {
    const metrics = doc('metrics.md');
    const registries = [createMetrics().registry, createAuditMetrics().registry];
    const names = (await Promise.all(registries.map((r) => r.getMetricsAsJSON()))).flat().map((m) => m.name)
      .filter((n) => n.startsWith('qubesec_') && !n.startsWith('qubesec_controller_') && !n.startsWith('qubesec_audit_process_'));
    expect(names.length).toBeGreaterThan(5);
    expect(names.filter((n) => !metrics.includes(`\`${n}\``))).toEqual([]);
  });

  // A map's row (podSecurityContext, resources) covers the Kubernetes fields inside it.
  it.each([['qubesec-qrng', 'qrng.md', 30], ['qubesec-vpn', 'vpn.md', 15]])('list every value of the %s chart in docs/%s', (chart, file, atLeast) => {
    const documented = new Set([...doc(file).matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]));
    const paths = valuePaths(parse(readFileSync(join(PROJECT_ROOT, 'charts', chart, 'values.yaml'), 'utf8')));
    expect(paths.length).toBeGreaterThan(atLeast);
    const covered = (path: string) => path.split('.').some((_, i, parts) => documented.has(parts.slice(0, i + 1).join('.')));
    expect(paths.filter((p) => !covered(p))).toEqual([]);
  });

  it('list every Helm value', () => {
    const values = doc('helm-values.md');
    const documented = new Set([...values.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]));
    const paths = valuePaths(parse(readFileSync(join(PROJECT_ROOT, 'charts', 'qubesec', 'values.yaml'), 'utf8')));
    expect(paths.length).toBeGreaterThan(50);
    // A row for a map (controller.resources) covers the keys inside it, which are Kubernetes' own fields.
    const covered = (path: string) => path.split('.').some((_, i, parts) => i > 0 && documented.has(parts.slice(0, i + 1).join('.'))) || documented.has(path);
    expect(paths.filter((p) => !covered(p))).toEqual([]);
  });
});
