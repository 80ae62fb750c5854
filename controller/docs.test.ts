// Every flag, annotation and metric the code defines has a row in docs/: this test fails when one is missing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHECK_OPTIONS } from './cli/check.js';
import { FLAGS } from './config.js';
import { ANNOTATION_KEYS, ANNOTATION_PREFIX, UNSUPPORTED_ACCESS_CONTROL } from './model/annotations.js';
import { INGRESS_NGINX_PREFIX } from './model/proxy-annotations.js';
import { createMetrics } from './observability/metrics.js';
import { PROJECT_ROOT } from './project.js';

const doc = (name: string) => readFileSync(join(PROJECT_ROOT, 'docs', name), 'utf8');

describe('docs', () => {
  it('list every controller flag', () => {
    const flags = doc('flags.md');
    expect(Object.keys(FLAGS).filter((f) => !flags.includes(`\`--${f}\``))).toEqual([]);
  });

  it('list every flag of qubesec check', () => {
    const check = doc('check.md');
    expect(Object.keys(CHECK_OPTIONS).filter((f) => f !== 'help' && !check.includes(`\`--${f}`))).toEqual([]);
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
    const names = (await createMetrics().registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => n.startsWith('qubesec_') && !n.startsWith('qubesec_controller_'));
    expect(names.length).toBeGreaterThan(5);
    expect(names.filter((n) => !metrics.includes(`\`${n}\``))).toEqual([]);
  });
});
