// The one entry to @peculiar/x509: its dependency injection needs reflect-metadata loaded first, and it must sign with
// Node's WebCrypto (OpenSSL 3.5). Every PKI module imports x509 from here, never from the package.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

export { x509 };
