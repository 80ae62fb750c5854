// Manifest files for `qubesec sign` and `qubesec verify`: YAML streams (or JSON) of objects, and `kind: List`s
// (kubectl get -o yaml). Signing edits each document's YAML in place, so comments and layout survive.
import type { KubernetesObject } from '@kubernetes/client-node';
import { isMap, parseAllDocuments, type Document } from 'yaml';
import type { CanonicalOptions } from './canonical.js';
import type { SigningKey } from './keys.js';
import { signObject, signatureAnnotation, verifyObject, type ObjectVerification } from './objects.js';
import type { TrustAnchors } from './trust.js';

export class ManifestError extends Error {}

export interface ManifestObject {
  /** "deploy.yaml document 2" or "deploy.yaml document 2 item 0" */
  location: string;
  /** Position in the stream, counting objects and problems alike. */
  order: number;
  /** "Deployment shop/web" */
  name: string;
  object: KubernetesObject;
  /** Where the object is in its document: [] or ['items', i]. */
  pathInDocument: (string | number)[];
  document: Document;
}

export interface ManifestProblem {
  location: string;
  order: number;
  reason: string;
}

/**
 * The objects in a YAML stream, and the documents that are not YAML or not an object with apiVersion, kind and
 * metadata.name: each of those is a problem of its own, and the other documents are read all the same.
 */
export function readManifests(text: string, source: string): { documents: Document[]; objects: ManifestObject[]; problems: ManifestProblem[] } {
  const documents = parseAllDocuments(text) as Document[];
  const objects: ManifestObject[] = [];
  const problems: ManifestProblem[] = [];
  let order = 0;
  const add = (value: unknown, location: string, pathInDocument: (string | number)[], document: Document) => {
    const obj = value as KubernetesObject;
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj) || typeof obj.kind !== 'string' || typeof obj.apiVersion !== 'string' || typeof obj.metadata?.name !== 'string') {
      problems.push({ location, order: order++, reason: 'not a Kubernetes object (apiVersion, kind and metadata.name)' });
    } else {
      objects.push({ location, order: order++, name: describeObject(obj), object: obj, pathInDocument, document });
    }
  };
  documents.forEach((document, i) => {
    const where = `${source} document ${i + 1}`;
    if (document.errors.length > 0) {
      problems.push({ location: where, order: order++, reason: `not YAML: ${document.errors[0]!.message.split('\n')[0]}` });
      return;
    }
    const value = document.toJS() as unknown;
    if (value === null || value === undefined) return; // an empty document, between two ---
    const list = value as { kind?: unknown; items?: unknown };
    if (typeof list.kind === 'string' && list.kind.endsWith('List') && Array.isArray(list.items)) {
      list.items.forEach((item, j) => add(item, `${where} item ${j}`, ['items', j], document));
    } else {
      add(value, where, [], document);
    }
  });
  return { documents, objects, problems };
}

export function describeObject(obj: KubernetesObject): string {
  return `${obj.kind} ${obj.metadata?.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata?.name}`;
}

/** The YAML stream with each object signed by `key`; a stream with a document that is not an object is not signed. */
export async function signManifests(text: string, source: string, key: SigningKey, options: CanonicalOptions = {}): Promise<string> {
  const { documents, objects, problems } = readManifests(text, source);
  if (problems.length > 0) throw new ManifestError(problems.map((p) => `${p.location}: ${p.reason}`).join('; '));
  const annotation = signatureAnnotation(key.keyId);
  for (const { object, document, pathInDocument, location, name } of objects) {
    const signed = await signObject(object, key, options).catch((err: Error) => {
      throw new ManifestError(`${location}: ${name}: ${err.message}`);
    });
    document.setIn([...pathInDocument, 'metadata', 'annotations', annotation], signed.metadata!.annotations![annotation]);
    // A long JWS inside a flow map ({name: x}) would be unreadable: those two maps become block maps.
    for (const path of [[...pathInDocument, 'metadata'], [...pathInDocument, 'metadata', 'annotations']]) {
      const node = document.getIn(path, true);
      if (isMap(node)) node.flow = false;
    }
  }
  // An empty document (--- right after ---) carries nothing; it is left out rather than written as blank lines.
  return joinDocuments(documents.filter((d) => d.contents !== null || d.commentBefore || d.comment).map((d) => String(d)));
}

/** Documents as one YAML stream: one "---" between two, whether or not a document starts with its own. */
export function joinDocuments(texts: string[]): string {
  return texts.map((t) => t.replace(/^---[ \t]*\n/, '').replace(/\n?$/, '\n')).join('---\n');
}

export interface ManifestVerification extends ObjectVerification {
  location: string;
  order: number;
  name: string;
}

/** Each object's verification, in stream order, and the documents that could not be read as objects. */
export async function verifyManifests(text: string, source: string, anchors: TrustAnchors, options: CanonicalOptions & { now?: Date } = {}): Promise<{ results: ManifestVerification[]; problems: ManifestProblem[] }> {
  const { objects, problems } = readManifests(text, source);
  const results = await Promise.all(objects.map(async ({ location, order, name, object }) => ({ location, order, name, ...(await verifyObject(object, anchors, options)) })));
  return { results, problems };
}
