// `qubesec cert`: make a root or intermediate CA, issue a leaf (from flags or a CSR), inspect a PEM file.
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_ALGORITHM, KEM_ALGORITHMS, SIGNATURE_ALGORITHMS, generateKeyPair, isKeyAlgorithm, type KeyAlgorithm } from '../pki/algorithms.js';
import { inspectPem } from '../pki/inspect.js';
import { PkiError, issueCertificate, privateKeyPem, readCsr, readPrivateKey, servedChain, type Profile } from '../pki/x509.js';

const USAGE = `qubesec cert <command> [flags]
  root          --out-cert F --out-key F [--subject DN] [--algorithm A] [--days N]
  intermediate  --ca-cert F --ca-key F --out-cert F --out-key F [--subject DN] [--algorithm A] [--days N] [--path-length N]
  leaf          --ca-cert F --ca-key F --out-cert F (--dns NAME... [--ip IP...] [--out-key F] [--algorithm A] | --csr F)
                [--profile server|client|server-client|key-establishment] [--days N]
  inspect       FILE [--json]
algorithms: ${[...SIGNATURE_ALGORITHMS, ...KEM_ALGORITHMS].join(', ')} (default ${DEFAULT_ALGORITHM}; ML-KEM only for key-establishment leaves)`;

const OPTIONS = {
  'out-cert': { type: 'string' },
  'out-key': { type: 'string' },
  'ca-cert': { type: 'string' },
  'ca-key': { type: 'string' },
  subject: { type: 'string' },
  algorithm: { type: 'string', default: DEFAULT_ALGORITHM },
  days: { type: 'string' },
  'path-length': { type: 'string' },
  dns: { type: 'string', multiple: true, default: [] as string[] },
  ip: { type: 'string', multiple: true, default: [] as string[] },
  csr: { type: 'string' },
  profile: { type: 'string', default: 'server' },
  json: { type: 'boolean', default: false },
} satisfies ParseArgsConfig['options'];

export async function runCert(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true });
  const required = (name: keyof typeof OPTIONS): string => {
    const v = values[name];
    if (typeof v !== 'string' || v === '') throw new PkiError(`${command} needs --${name}`);
    return v;
  };
  const days = (fallback: number) => {
    const n = Number(values.days ?? fallback);
    if (!Number.isInteger(n) || n < 1) throw new PkiError(`--days: ${JSON.stringify(values.days)} is not a whole number of days`);
    return new Date(Date.now() + n * 86_400_000);
  };
  const algorithm = (): KeyAlgorithm => {
    if (!isKeyAlgorithm(values.algorithm)) throw new PkiError(`--algorithm: ${JSON.stringify(values.algorithm)} is not one of ${[...SIGNATURE_ALGORITHMS, ...KEM_ALGORITHMS].join(', ')}`);
    return values.algorithm;
  };
  const issuer = async () => ({
    certificatePem: await readText(required('ca-cert'), '--ca-cert'),
    privateKey: readPrivateKey(await readText(required('ca-key'), '--ca-key'), `--ca-key ${values['ca-key']}`),
  });

  switch (command) {
    case 'root':
    case 'intermediate': {
      const keys = generateKeyPair(algorithm());
      const spec = {
        subject: values.subject ?? `CN=QubeSec ${command === 'root' ? 'Root' : 'Intermediate'} CA (${values.algorithm})`,
        profile: 'ca' as const,
        pathLength: values['path-length'] === undefined ? (command === 'intermediate' ? 0 : undefined) : Number(values['path-length']),
        notAfter: days(command === 'root' ? 3650 : 1825),
        publicKey: keys.publicKey,
      };
      const pem = command === 'root' ? await issueCertificate(spec, { selfKey: keys.privateKey }) : await issueCertificate(spec, await issuer());
      await writeFile(required('out-key'), privateKeyPem(keys.privateKey), { mode: 0o600 });
      await writeFile(required('out-cert'), pem);
      break;
    }
    case 'leaf': {
      const ca = await issuer();
      const profile = values.profile as Profile;
      if (!['server', 'client', 'server-client', 'key-establishment'].includes(profile)) throw new PkiError(`--profile: ${JSON.stringify(profile)} is not server, client, server-client or key-establishment`);
      let subject: string;
      let dnsNames = values.dns;
      let ipAddresses = values.ip;
      let publicKey;
      if (values.csr) {
        const csr = await readCsr(await readText(values.csr, '--csr')).catch((err: Error) => { throw new PkiError(`--csr ${values.csr}: ${err.message}`); });
        ({ subject, publicKey } = csr);
        dnsNames = [...csr.dnsNames, ...dnsNames];
        ipAddresses = [...csr.ipAddresses, ...ipAddresses];
      } else {
        if (dnsNames.length + ipAddresses.length === 0) throw new PkiError('leaf needs --dns or --ip (or --csr)');
        const keys = generateKeyPair(algorithm());
        publicKey = keys.publicKey;
        subject = values.subject ?? `CN=${dnsNames[0] ?? ipAddresses[0]}`;
        await writeFile(required('out-key'), privateKeyPem(keys.privateKey), { mode: 0o600 });
      }
      const pem = await issueCertificate({ subject, dnsNames, ipAddresses, profile, notAfter: days(90), publicKey }, ca);
      await writeFile(required('out-cert'), servedChain(pem, ca.certificatePem));
      break;
    }
    case 'inspect': {
      const file = positionals[0];
      if (!file) throw new PkiError('inspect needs a PEM file');
      const info = inspectPem(await readText(file, 'inspect'));
      if (values.json) {
        console.log(JSON.stringify(info, null, 2));
        break;
      }
      info.certificates.forEach((c, i) => {
        console.log(`[${i + 1}] ${c.subject}${c.isCA ? '  (CA)' : ''}${c.selfSigned ? '  (self-signed)' : ''}`);
        console.log(`    issuer     ${c.issuer}`);
        console.log(`    key        ${c.publicKeyAlgorithm}, ${c.publicKeyBytes} bytes (SubjectPublicKeyInfo)`);
        console.log(`    signature  ${c.signatureAlgorithm}, ${c.signatureBytes} bytes`);
        console.log(`    valid      ${c.notBefore} .. ${c.notAfter}`);
        if (c.dnsNames.length + c.ipAddresses.length > 0) console.log(`    names      ${[...c.dnsNames, ...c.ipAddresses].join(', ')}`);
      });
      console.log(info.chainInOrder ? `chain: in order (${info.certificates.length} certificate${info.certificates.length > 1 ? 's' : ''})` : `chain: NOT in order: ${info.chainProblems.join('; ')}`);
      break;
    }
    default:
      throw new PkiError(USAGE);
  }
}

async function readText(file: string, flag: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new PkiError(`${flag} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}
