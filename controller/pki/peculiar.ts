// The one entry to @peculiar/x509: its dependency injection needs reflect-metadata loaded first, and it must sign with
// Node's WebCrypto (OpenSSL 3.5). Every PKI module imports x509 from here, never from the package.
import 'reflect-metadata';
import { sign, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * Node 24's WebCrypto has ML-DSA but not yet SLH-DSA, which its OpenSSL (node:crypto) does have. Keys made by
 * `nodeSigningKey` carry their KeyObject, and signing with them goes to node:crypto; everything else is WebCrypto.
 */
const subtle = webcrypto.subtle;
const provider = {
  getRandomValues: <T extends ArrayBufferView>(array: T) => webcrypto.getRandomValues(array as never) as T,
  subtle: new Proxy(subtle, {
    get(target, property) {
      if (property === 'sign') {
        return (algorithm: never, key: { keyObject?: KeyObject }, data: ArrayBuffer | ArrayBufferView) =>
          key.keyObject ? Promise.resolve(new Uint8Array(sign(null, ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data), key.keyObject)).buffer) : subtle.sign(algorithm, key as never, data as never);
      }
      const value = Reflect.get(target, property) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }),
};
x509.cryptoProvider.set(provider as never);

/** A signing key @peculiar/x509 accepts, for an algorithm WebCrypto lacks. */
export function nodeSigningKey(key: KeyObject, algorithm: { name: string }): never {
  return { algorithm, type: 'private', extractable: false, usages: ['sign'], keyObject: key } as never;
}

export { x509 };
