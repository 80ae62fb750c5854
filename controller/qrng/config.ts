// The entropy sources' configuration file (YAML or JSON) of `qubesec qrng serve`: parsed into a typed model by a pure
// function (every error names the file and the field, all errors at once), then turned into sources, which read the
// credential files it names (the chart mounts them from Secrets). docs/qrng.md describes the format.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { DEFAULT_ALPHA, validateSampleModel, type SampleModel } from './health.js';
import { DeviceSource, OpenApiSource, OsSource, type EntropySource, type OpenApiVariant } from './sources.js';

interface SourceBase {
  name: string;
  model: SampleModel;
}

export interface OpenApiSourceConfig extends SourceBase {
  type: 'openapi';
  url: string;
  variant: OpenApiVariant;
  /** Files holding the credentials (a mounted Secret's keys), read when the source is made. */
  caFile?: string;
  bearerTokenFile?: string;
  apiKeyFile?: string;
  certFile?: string;
  keyFile?: string;
  blockSize?: number;
  entropyType?: string;
  timeoutMs?: number;
}

export interface DeviceSourceConfig extends SourceBase {
  type: 'device';
  path: string;
  quantum: boolean;
  timeoutMs?: number;
}

export interface OsSourceConfig extends SourceBase {
  type: 'os';
}

export type SourceConfig = OpenApiSourceConfig | DeviceSourceConfig | OsSourceConfig;

export interface QrngConfig {
  sources: SourceConfig[];
  /** Credit non-quantum sources (the OS generator): an explicit opt-in, off by default (EntropyPoolOptions.allowNonQuantum). */
  creditNonQuantum: boolean;
  /** How soon a failed source is tried again (EntropyPoolOptions.retry); the pool's defaults when absent. */
  retry: { initialMs?: number; maxMs?: number };
}

/** Thrown with every problem of a configuration file, each naming the field. */
export class QrngConfigError extends Error {
  override readonly name = 'QrngConfigError';
}

type Fields = Record<string, unknown>;

const SOURCE_FIELDS = {
  openapi: ['name', 'type', 'url', 'variant', 'caFile', 'bearerTokenFile', 'apiKeyFile', 'certFile', 'keyFile', 'blockSize', 'entropyType', 'timeoutMs', 'sampleBits', 'minEntropy', 'alpha'],
  device: ['name', 'type', 'path', 'quantum', 'timeoutMs', 'sampleBits', 'minEntropy', 'alpha'],
  os: ['name', 'type', 'sampleBits', 'minEntropy', 'alpha'],
} as const;

/** alpha as a number or as "2^-N" (easier to read: 2^-20 is 9.5e-7). */
function parseAlpha(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  const m = typeof value === 'string' ? /^2\^(-\d+(?:\.\d+)?)$/.exec(value.trim()) : null;
  return m ? 2 ** Number(m[1]) : undefined;
}

/** Parses and checks a configuration file's text (`file` names it in errors); throws QrngConfigError listing every problem. */
export function parseQrngConfig(text: string, file: string): QrngConfig {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new QrngConfigError(`${file}: not YAML or JSON: ${(err as Error).message}`);
  }
  const errors: string[] = [];
  const fail = (field: string, message: string) => errors.push(`${file}: ${field} ${message}`);
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new QrngConfigError(`${file}: must be a map with a "sources" list`);
  const top = doc as Fields;
  for (const key of Object.keys(top)) if (!['sources', 'creditNonQuantum', 'retry'].includes(key)) fail(key, 'is not a known field (sources, creditNonQuantum, retry)');
  const creditNonQuantum = top.creditNonQuantum ?? false;
  if (typeof creditNonQuantum !== 'boolean') fail('creditNonQuantum', 'must be true or false');
  const retry: QrngConfig['retry'] = {};
  if (top.retry !== undefined) {
    if (top.retry === null || typeof top.retry !== 'object' || Array.isArray(top.retry)) fail('retry', 'must be a map {initialMs, maxMs}');
    else {
      for (const [key, value] of Object.entries(top.retry as Fields)) {
        if (key !== 'initialMs' && key !== 'maxMs') fail(`retry.${key}`, 'is not a field of retry (initialMs, maxMs)');
        else if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 3_600_000) fail(`retry.${key}`, `must be a whole number of milliseconds from 1 to 3600000, not ${JSON.stringify(value)}`);
        else retry[key] = value as number;
      }
      if (retry.initialMs !== undefined && retry.maxMs !== undefined && retry.initialMs > retry.maxMs) fail('retry.initialMs', `(${retry.initialMs}) is above retry.maxMs (${retry.maxMs})`);
    }
  }
  if (!Array.isArray(top.sources) || top.sources.length === 0) {
    fail('sources', 'must be a non-empty list');
    throw new QrngConfigError(errors.join('\n'));
  }
  const sources: SourceConfig[] = [];
  const names = new Set<string>();
  top.sources.forEach((item: unknown, i) => {
    const at = `sources[${i}]`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return fail(at, 'must be a map');
    const s = item as Fields;
    const type = s.type;
    if (type !== 'openapi' && type !== 'device' && type !== 'os') return fail(`${at}.type`, `must be openapi, device or os, not ${JSON.stringify(type)}`);
    const where = typeof s.name === 'string' && s.name ? `${at} ("${s.name}")` : at;
    const string = (field: string, required: boolean): string | undefined => {
      const v = s[field];
      if (v === undefined && !required) return undefined;
      if (typeof v !== 'string' || v === '') fail(`${where}.${field}`, required ? 'is required: a non-empty string' : 'must be a non-empty string');
      return typeof v === 'string' ? v : undefined;
    };
    const positive = (field: string): number | undefined => {
      const v = s[field];
      if (v === undefined) return undefined;
      if (!Number.isInteger(v) || (v as number) < 1) fail(`${where}.${field}`, `must be a positive whole number, not ${JSON.stringify(v)}`);
      return v as number;
    };
    for (const key of Object.keys(s)) if (!(SOURCE_FIELDS[type] as readonly string[]).includes(key)) fail(`${where}.${key}`, `is not a field of ${type} sources (${SOURCE_FIELDS[type].join(', ')})`);
    const name = string('name', true) ?? '';
    if (name && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) fail(`${where}.name`, 'must be a lower-case name of letters, digits and - (it labels metrics)');
    if (names.has(name)) fail(`${where}.name`, `"${name}" names two sources`);
    names.add(name);
    // H is the vendor's assessed figure: no default, a source must state it.
    const sampleBits = s.sampleBits ?? 8;
    const alpha = s.alpha === undefined ? DEFAULT_ALPHA : parseAlpha(s.alpha);
    if (alpha === undefined) fail(`${where}.alpha`, `must be a number or "2^-N", not ${JSON.stringify(s.alpha)}`);
    if (typeof s.minEntropy !== 'number') fail(`${where}.minEntropy`, 'is required: the min-entropy H per sample the vendor assessed (bits)');
    const model = { sampleBits, minEntropy: s.minEntropy, alpha: alpha ?? DEFAULT_ALPHA } as SampleModel;
    if (typeof s.minEntropy === 'number' && alpha !== undefined) {
      try {
        validateSampleModel(model, `${file}: ${where}`);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    if (type === 'openapi') {
      const url = string('url', true) ?? '';
      if (url && !/^https?:\/\/[^/]/.test(url)) fail(`${where}.url`, `must be an http(s) URL, not ${JSON.stringify(url)}`);
      const variant = s.variant ?? 'qrng-open-api';
      if (variant !== 'qrng-open-api' && variant !== 'qrypt') fail(`${where}.variant`, `must be qrng-open-api or qrypt, not ${JSON.stringify(variant)}`);
      const files = { caFile: string('caFile', false), bearerTokenFile: string('bearerTokenFile', false), apiKeyFile: string('apiKeyFile', false), certFile: string('certFile', false), keyFile: string('keyFile', false) };
      if ((files.certFile === undefined) !== (files.keyFile === undefined)) fail(`${where}.certFile`, 'and keyFile go together (mTLS needs both)');
      const optional = { blockSize: positive('blockSize'), entropyType: string('entropyType', false), timeoutMs: positive('timeoutMs') };
      sources.push({ type, name, model, url, variant: variant as OpenApiVariant, ...withoutUndefined({ ...files, ...optional }) });
    } else if (type === 'device') {
      const quantum = s.quantum ?? true;
      if (typeof quantum !== 'boolean') fail(`${where}.quantum`, 'must be true or false');
      const path = string('path', true) ?? '';
      if (path && !path.startsWith('/')) fail(`${where}.path`, `must be an absolute path, not ${JSON.stringify(path)}`);
      sources.push({ type, name, model, path, quantum: quantum === true, ...withoutUndefined({ timeoutMs: positive('timeoutMs') }) });
    } else {
      sources.push({ type, name, model });
    }
  });
  if (errors.length > 0) throw new QrngConfigError(errors.join('\n'));
  return { sources, creditNonQuantum: creditNonQuantum === true, retry };
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A credential file's content; the error names the source and the field. */
function credential(source: string, field: string, path: string | undefined, read: (path: string) => string): string | undefined {
  if (path === undefined) return undefined;
  try {
    return read(path);
  } catch (err) {
    throw new QrngConfigError(`entropy source "${source}": ${field} ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

/** The sources a configuration describes, their credential files read now. */
export function createSources(config: QrngConfig, read: (path: string) => string = (path) => readFileSync(path, 'utf8')): EntropySource[] {
  return config.sources.map((s) => {
    if (s.type === 'os') return new OsSource(s.name, s.model);
    if (s.type === 'device') return new DeviceSource({ name: s.name, path: s.path, model: s.model, quantum: s.quantum, ...withoutUndefined({ timeoutMs: s.timeoutMs }) });
    const file = (field: keyof OpenApiSourceConfig) => credential(s.name, field, s[field] as string | undefined, read);
    return new OpenApiSource({
      name: s.name,
      url: s.url,
      variant: s.variant,
      model: s.model,
      ...withoutUndefined({
        ca: file('caFile'),
        // A token file's trailing newline is not part of the token.
        bearerToken: file('bearerTokenFile')?.trim(),
        apiKey: file('apiKeyFile')?.trim(),
        cert: file('certFile'),
        key: file('keyFile'),
        blockSize: s.blockSize,
        entropyType: s.entropyType,
        timeoutMs: s.timeoutMs,
      }),
    });
  });
}
