// `qubesec sign` and `qubesec verify` (also `kubectl qubesec sign|verify`): post-quantum signatures on manifests
// (annotations, one per signer) and detached DSSE bundles for files. docs/signatures.md has every flag and exit code.
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { DEFAULT_SIGNATURE_ALGORITHM, KeyError, SIGNATURE_ALGORITHMS, generatePrivateKey, isSignatureAlgorithm, privateKeyPem, publicKeyPem } from '../signatures/algorithms.js';
import { FieldPathError, parseFieldPath } from '../signatures/canonical.js';
import { BUNDLE_SUFFIX, signFile, verifyFile } from '../signatures/files.js';
import { EnvelopeError } from '../signatures/jws.js';
import { loadSigningKey } from '../signatures/keys.js';
import { ManifestError, joinDocuments, signManifests, verifyManifests } from '../signatures/manifests.js';
import type { ObjectVerification } from '../signatures/objects.js';
import { trustAnchorsFrom } from '../signatures/trust.js';
import { UsageError, parseCommandLine } from './check.js';

/** Exit codes of `qubesec verify` (and `sign`): docs/signatures.md. */
export const EXIT = { ok: 0, verificationFailed: 1, usage: 2 } as const;

const SIGN_USAGE = `qubesec sign --key KEY.pem [--cert CERT.pem] [--ignore-field PATH]... [--out FILE] MANIFEST|FOLDER|-...
qubesec sign --detached --key KEY.pem [--cert CERT.pem] FILE...          (writes FILE${BUNDLE_SUFFIX})
qubesec sign --new-key KEY.pem [--algorithm A]                          (writes KEY.pem and its public key KEY.pub.pem)
algorithms: ${SIGNATURE_ALGORITHMS.join(', ')} (default ${DEFAULT_SIGNATURE_ALGORITHM})`;

const VERIFY_USAGE = `qubesec verify (--key PUB.pem | --ca CA.pem)... [--revoked SERIAL|KEYID]... [--ignore-field PATH]... [--min-signers N]
               [--bundle FILE${BUNDLE_SUFFIX}]... FILE|FOLDER|-...
exit codes: 0 every object and file verifies, 1 one or more do not, 2 usage or input error`;

/** The flags of `qubesec sign`; docs/signatures.md has a row for each (controller/docs.test.ts). */
export const SIGN_OPTIONS = {
  key: { type: 'string' },
  cert: { type: 'string' },
  out: { type: 'string' },
  detached: { type: 'boolean', default: false },
  'ignore-field': { type: 'string', multiple: true, default: [] as string[] },
  'new-key': { type: 'string' },
  algorithm: { type: 'string', default: DEFAULT_SIGNATURE_ALGORITHM },
  help: { type: 'boolean', default: false },
} satisfies ParseArgsConfig['options'];

/** The flags of `qubesec verify`; docs/signatures.md has a row for each (controller/docs.test.ts). */
export const VERIFY_OPTIONS = {
  key: { type: 'string', multiple: true, default: [] as string[] },
  ca: { type: 'string', multiple: true, default: [] as string[] },
  revoked: { type: 'string', multiple: true, default: [] as string[] },
  bundle: { type: 'string', multiple: true, default: [] as string[] },
  'ignore-field': { type: 'string', multiple: true, default: [] as string[] },
  'min-signers': { type: 'string', default: '1' },
  help: { type: 'boolean', default: false },
} satisfies ParseArgsConfig['options'];


export async function runSign(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, SIGN_OPTIONS, SIGN_USAGE);
  if (values.help) {
    console.log(SIGN_USAGE);
    return EXIT.ok;
  }
  if (values['new-key'] !== undefined) return newKey(values['new-key'], values.algorithm);
  if (!values.key) throw new UsageError(`sign needs --key\n${SIGN_USAGE}`);
  if (positionals.length === 0) throw new UsageError(`sign needs a manifest, folder or file (- for standard input)\n${SIGN_USAGE}`);
  const ignoredFields = checkedFieldPaths(values['ignore-field']);
  const keyPem = await readText(values.key, '--key');
  const certificatePem = values.cert === undefined ? undefined : await readText(values.cert, '--cert');
  const signer = await asInputError(() => loadSigningKey(keyPem, values.key!, certificatePem));

  if (values.detached) {
    if (values.out !== undefined) throw new UsageError(`--detached writes FILE${BUNDLE_SUFFIX} beside each FILE; it takes no --out`);
    for (const file of positionals) {
      const bundle = `${file}${BUNDLE_SUFFIX}`;
      const existing = await readFile(bundle, 'utf8').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw new UsageError(`${bundle}: ${err.message}`);
      });
      const bytes = await readBytes(file);
      await writeFile(bundle, await asInputError(() => signFile(file, bytes, signer, existing)));
      console.error(`signed ${file} -> ${bundle} (key ${signer.keyId}, ${signer.algorithm})`);
    }
    return EXIT.ok;
  }
  const outputs: string[] = [];
  for (const input of await manifestFiles(positionals)) {
    const text = await readText(input, 'manifest');
    outputs.push(await asInputError(() => signManifests(text, input, signer, { ignoredFields })));
  }
  const text = joinDocuments(outputs);
  if (values.out === undefined) process.stdout.write(text);
  else await writeFile(values.out, text);
  return EXIT.ok;
}

async function newKey(file: string, algorithm: string): Promise<number> {
  if (!isSignatureAlgorithm(algorithm)) throw new UsageError(`--algorithm: ${JSON.stringify(algorithm)} is not one of ${SIGNATURE_ALGORITHMS.join(', ')}`);
  const key = generatePrivateKey(algorithm);
  const publicFile = `${file.replace(/\.pem$/, '')}.pub.pem`;
  await writeFile(file, privateKeyPem(key), { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(`--new-key ${file}: ${err.code === 'EEXIST' ? 'exists already (not overwritten)' : err.message}`);
  });
  await writeFile(publicFile, publicKeyPem(key.publicKey));
  console.error(`wrote ${algorithm} key ${key.publicKey.keyId}: ${file} (private, mode 0600) and ${publicFile}`);
  return EXIT.ok;
}

/** One object's or file's outcome, as verify prints it. */
interface Outcome {
  what: string;
  result?: ObjectVerification;
  /** An input that could not be read at all (exit code 2). */
  inputError?: string;
}

export async function runVerify(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, VERIFY_OPTIONS, VERIFY_USAGE);
  if (values.help) {
    console.log(VERIFY_USAGE);
    return EXIT.ok;
  }
  if (values.key.length + values.ca.length === 0) throw new UsageError(`verify needs --key or --ca (what to trust)\n${VERIFY_USAGE}`);
  if (positionals.length === 0) throw new UsageError(`verify needs a manifest, folder or file (- for standard input)\n${VERIFY_USAGE}`);
  const minSigners = Number(values['min-signers']);
  if (!Number.isInteger(minSigners) || minSigners < 1) throw new UsageError(`--min-signers: ${JSON.stringify(values['min-signers'])} is not a whole number of at least 1`);
  if (values.bundle.length > 0 && values.bundle.length !== positionals.length) {
    throw new UsageError(`--bundle pairs with FILE in order: ${values.bundle.length} bundle(s) for ${positionals.length} file(s)`);
  }
  const ignoredFields = checkedFieldPaths(values['ignore-field']);
  const sources = await Promise.all([...values.key.map((f) => ['--key', f] as const), ...values.ca.map((f) => ['--ca', f] as const)].map(async ([flag, name]) => ({ flag, name, pem: await readText(name, flag) })));
  for (const { name, pem } of sources.filter((s) => s.flag === '--ca')) {
    if (!/-----BEGIN CERTIFICATE-----/.test(pem)) throw new UsageError(`--ca ${name}: no PEM certificate in it (a public key goes with --key)`);
  }
  const anchors = await asInputError(() => trustAnchorsFrom(sources, { revoked: values.revoked }));

  const outcomes: Outcome[] = [];
  for (const [i, file] of positionals.entries()) {
    const bundle = values.bundle[i] ?? (file !== '-' && (await isFile(`${file}${BUNDLE_SUFFIX}`)) ? `${file}${BUNDLE_SUFFIX}` : undefined);
    try {
      if (bundle !== undefined) {
        const [bytes, text] = await Promise.all([readBytes(file), readText(bundle, '--bundle')]);
        outcomes.push({ what: `${file} (bundle ${bundle})`, result: verifyFile(bytes, text, anchors) });
        continue;
      }
      for (const manifest of await manifestFiles([file])) {
        const { results, problems } = await verifyManifests(await readText(manifest, 'manifest'), manifest, anchors, { ignoredFields });
        const inStreamOrder = [...problems.map((p) => ({ order: p.order, what: p.location, inputError: p.reason })), ...results.map((r) => ({ order: r.order, what: `${r.location}: ${r.name}`, result: r }))];
        outcomes.push(...inStreamOrder.sort((a, b) => a.order - b.order));
      }
    } catch (err) {
      outcomes.push({ what: bundle === undefined ? file : `${file} (bundle ${bundle})`, inputError: inputErrorMessage(err) });
    }
  }
  if (outcomes.length === 0) throw new UsageError(`no object in ${positionals.join(' ')}`);

  let exit: number = EXIT.ok;
  for (const { what, result, inputError } of outcomes) {
    if (inputError !== undefined) {
      console.log(`ERROR ${what}: ${inputError}`);
      exit = EXIT.usage;
      continue;
    }
    const { signers, failures } = result!;
    const ok = signers.length >= minSigners;
    const by = signers.map((s) => `${s.id}${s.subject ? ` (${s.subject})` : ''} ${s.algorithm}`).join(', ');
    const problems = failures.map((f) => `${f.annotation}: ${f.reason}`);
    if (ok) {
      console.log(`OK    ${what}: signed by ${by}${problems.length ? `; not counted: ${problems.join('; ')}` : ''}`);
      continue;
    }
    const why = signers.length + failures.length === 0 ? 'no signature' : [signers.length ? `${signers.length} verified signer(s) of ${minSigners} required (${by})` : '', ...problems].filter(Boolean).join('; ');
    console.log(`FAIL  ${what}: ${why}`);
    if (exit === EXIT.ok) exit = EXIT.verificationFailed;
  }
  return exit;
}

function checkedFieldPaths(paths: string[]): string[] {
  for (const path of paths) {
    try {
      parseFieldPath(path);
    } catch (err) {
      throw new UsageError(`--ignore-field: ${(err as Error).message}`);
    }
  }
  return paths;
}

/** The manifest files behind the arguments: files as given, a folder's *.yaml, *.yml and *.json (recursively, sorted). */
async function manifestFiles(inputs: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const input of inputs) {
    if (input === '-') {
      files.push(input);
      continue;
    }
    const info = await stat(input).catch(() => {
      throw new UsageError(`${input}: no such file or folder`);
    });
    if (!info.isDirectory()) {
      files.push(input);
      continue;
    }
    const entries = (await readdir(input, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile() && /\.(ya?ml|json)$/.test(e.name) && !e.name.endsWith(BUNDLE_SUFFIX))
      .map((e) => join(e.parentPath, e.name))
      .sort();
    if (entries.length === 0) throw new UsageError(`${input}: no *.yaml, *.yml or *.json file in it`);
    files.push(...entries);
  }
  return files;
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isFile(), () => false);
}

async function readBytes(file: string): Promise<Buffer> {
  if (file === '-') throw new UsageError('a detached signature needs a file name, not standard input');
  return readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(`${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  });
}

async function readText(file: string, what: string): Promise<string> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  return readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(`${what} ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  });
}

const INPUT_ERRORS = [KeyError, ManifestError, EnvelopeError, FieldPathError, UsageError];

function inputErrorMessage(err: unknown): string {
  if (INPUT_ERRORS.some((type) => err instanceof type)) return (err as Error).message;
  throw err;
}

/** Bad keys, manifests and envelopes are input errors: exit code 2, with their message. */
async function asInputError<T>(make: () => T | Promise<T>): Promise<T> {
  try {
    return await make();
  } catch (err) {
    throw new UsageError(inputErrorMessage(err));
  }
}
