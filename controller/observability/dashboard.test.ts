// The chart's Grafana dashboard queries only metrics the controller and the QRNG service define: a renamed metric fails here, not on a
// blank panel in someone's Grafana.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../project.js';
import { Registry } from 'prom-client';
import { createQrngMetrics } from '../qrng/metrics.js';
import { createMetrics } from './metrics.js';

interface Dashboard { panels: { title: string; targets: { expr: string }[] }[] }

const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset']);

/** Metric names in a PromQL expression: identifiers that are neither functions, keywords, labels nor strings. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '');
  return [...bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*\b(?!\s*\()/g)].map((m) => m[0]).filter((name) => !PROMQL_KEYWORDS.has(name));
}

describe('Grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(join(PROJECT_ROOT, 'charts', 'qubesec', 'dashboards', 'qubesec.json'), 'utf8')) as Dashboard;
  const exprs = dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr));

  it('finds metric names, not functions, labels or keywords', () => {
    expect(metricNames('sum by (group) (rate(a_total{group_class!="x{y}"}[$__rate_interval])) / count(b == 0) or vector(0) - time()')).toEqual(['a_total', 'b']);
  });

  it('queries only metrics the controller and the QRNG service define', async () => {
    const qrng = new Registry();
    createQrngMetrics(qrng);
    const defined = new Set([...(await createMetrics().registry.getMetricsAsJSON()), ...(await qrng.getMetricsAsJSON())].map((m) => m.name));
    const used = new Set(exprs.flatMap(metricNames));
    expect(used.size).toBeGreaterThan(4);
    expect([...used].filter((name) => !defined.has(name))).toEqual([]);
  });

  it('shows the PQ share of handshakes, reloads, errors and certificate expiry by algorithm', () => {
    const all = exprs.join('\n');
    expect(all).toContain('group_class!="classical"');
    for (const metric of ['qubesec_config_reloads_total', 'qubesec_config_reload_failures_total', 'qubesec_endpoint_update_failures_total']) expect(all).toContain(metric);
    expect(all).toMatch(/by \(key_algorithm\) \(qubesec_certificate_expiry_timestamp_seconds/);
  });

  it('shows the QRNG sources\' health, bytes served, refusals and failures by cause', () => {
    const all = exprs.join('\n');
    expect(all).toMatch(/by \(source, quantum\) \(qubesec_qrng_source_healthy/);
    expect(all).toMatch(/by \(client\) \(rate\(qubesec_qrng_served_bytes_total/);
    expect(all).toContain('qubesec_qrng_requests_total{namespace=~"$namespace",code="503"}');
    expect(all).toMatch(/by \(source, cause\) \(increase\(qubesec_qrng_source_failures_total/);
  });
});
