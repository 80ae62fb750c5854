// ML-DSA CAs and leaves made for one run, and HTTPS backends served by the rootfs's NGINX, which answer with what the
// handshake negotiated ($ssl_curve, $ssl_protocol, ...): a Node server cannot tell the group.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair } from '../../controller/pki/algorithms.js';
import { issueCertificate, privateKeyPem, type Issuer, type Profile } from '../../controller/pki/x509.js';
import { startRootfsNginx } from './backends.js';
import { rootfs } from './env.js';
import type { TestHost } from './netns.js';

const inDays = (days: number) => new Date(Date.now() + days * 86_400_000);

/** A self-signed ML-DSA-65 root valid for two days. */
export async function mldsaRoot(commonName: string): Promise<Issuer> {
  const keys = generateKeyPair('ml-dsa-65');
  const certificatePem = await issueCertificate({ subject: `CN=${commonName},O=QubeSec e2e`, profile: 'ca', notAfter: inDays(2), publicKey: keys.publicKey }, { selfKey: keys.privateKey });
  return { certificatePem, privateKey: keys.privateKey };
}

/**
 * An ML-DSA-65 leaf of `ca` written into `dir` (inside the rootfs, where chrooted curl and NGINX read it) as
 * `file`.crt and `file`.key; returns the paths as they see them.
 */
export async function mldsaLeaf(dir: string, ca: Issuer, file: string, subject: string, profile: Profile, dnsNames?: string[]): Promise<{ cert: string; key: string }> {
  const keys = generateKeyPair('ml-dsa-65');
  const pem = await issueCertificate({ subject, dnsNames, profile, notAfter: inDays(1), publicKey: keys.publicKey }, ca);
  await writeFile(join(dir, `${file}.crt`), pem);
  await writeFile(join(dir, `${file}.key`), privateKeyPem(keys.privateKey), { mode: 0o600 });
  const inside = dir.slice(rootfs().length);
  return { cert: `${inside}/${file}.crt`, key: `${inside}/${file}.key` };
}

export interface TlsBackendServer {
  port: number;
  /** ssl_ecdh_curve: the groups the backend accepts. */
  groups: string;
  /** The answer, NGINX variables expanded. */
  answer: string;
  /** More directives for the server (a client certificate check). */
  directives?: string;
}

/** One NGINX on `host` serving each of `servers` over TLS with `leaf`; its files go into `dir` (inside the rootfs) as `name`.*. */
export async function startTlsBackend(host: TestHost, dir: string, name: string, leaf: { cert: string; key: string }, servers: TlsBackendServer[]): Promise<void> {
  const inside = dir.slice(rootfs().length);
  const blocks = servers.map((s) => `
    server {
        listen ${host.address}:${s.port} ssl;
        ssl_certificate ${leaf.cert};
        ssl_certificate_key ${leaf.key};
        ssl_ecdh_curve ${s.groups};${s.directives ? `\n        ${s.directives}` : ''}
        location / {
            return 200 "${s.answer}\\n";
        }
    }`);
  await writeFile(join(dir, `${name}.conf`), `worker_processes 1;
pid ${inside}/${name}.pid;
error_log stderr warn;
events {
    worker_connections 64;
}
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path ${inside}/${name}-client_body;
    proxy_temp_path ${inside}/${name}-proxy;
    fastcgi_temp_path ${inside}/${name}-fastcgi;
    uwsgi_temp_path ${inside}/${name}-uwsgi;
    scgi_temp_path ${inside}/${name}-scgi;
${blocks.join('\n')}
}
`);
  await startRootfsNginx(host, `${inside}/${name}.conf`, servers.map((s) => s.port));
}
