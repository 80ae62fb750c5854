// Syntax checks for every user-supplied value that reaches the data plane's configuration. The API server checks most
// of these already, but manifests read from files do not pass through it, and nothing downstream re-checks.

const DNS_LABEL = '[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?';
const HOST = new RegExp(`^(\\*\\.)?${DNS_LABEL}(\\.${DNS_LABEL})*$`);
const DNS_SUBDOMAIN = new RegExp(`^${DNS_LABEL}(\\.${DNS_LABEL})*$`);
const DNS_1123_LABEL = new RegExp(`^${DNS_LABEL}$`);
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const PORT_NAME = /^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/;
// RFC 3986 path characters less those that would need escaping in NGINX or a shell: ' " ; $ { } \ # ? and space.
const PATH = /^\/[A-Za-z0-9._~%!&()*+,=:@/-]*$/;

export function checkHost(host: string): string | undefined {
  if (host.length > 253) return 'is longer than 253 characters';
  return HOST.test(host) ? undefined : 'is not a lower-case DNS name (an optional leading "*." is allowed)';
}

export function checkPath(path: string): string | undefined {
  if (path.length > 2048) return 'is longer than 2048 characters';
  return PATH.test(path)
    ? undefined
    : 'must start with "/" and hold only letters, digits and the characters . _ ~ % ! & ( ) * + , = : @ / -';
}

// The API server refuses these in Exact and Prefix paths (k8s.io/kubernetes pkg/apis/networking/validation).
const TRAVERSAL_SEQUENCES = ['//', '/./', '/../', '%2f', '%2F'];
const TRAVERSAL_SUFFIXES = ['/..', '/.'];

/** What the API server adds for Exact and Prefix paths (ImplementationSpecific ones need only start with "/"). */
export function checkExactOrPrefixPath(path: string): string | undefined {
  const sequence = TRAVERSAL_SEQUENCES.find((s) => path.includes(s));
  if (sequence) return `must not contain "${sequence}" (pathType Exact or Prefix)`;
  const suffix = TRAVERSAL_SUFFIXES.find((s) => path.endsWith(s));
  return suffix ? `must not end with "${suffix}" (pathType Exact or Prefix)` : undefined;
}

/**
 * Paths of use-regex Ingresses: a regular expression JavaScript can compile (PCRE reads the common subset alike) that
 * stays one quoted NGINX token and expands no variable.
 */
export function checkRegexPath(path: string): string | undefined {
  if (path.length > 2048) return 'is longer than 2048 characters';
  if (!path.startsWith('/')) return 'must start with "/"';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
  if (/[\s"'`;#]|[\x00-\x1f\x7f]/.test(path)) return 'must not hold white space, quotes, ";" or "#"';
  if (/\\([\\"']|$)/.test(path)) return 'must not end in "\\" or escape "\\" or a quote';
  if (/\$(?![)|]|$)/.test(path)) return 'may use "$" only as an end anchor';
  try {
    new RegExp(path);
  } catch (err) {
    return `is not a regular expression (${(err as Error).message})`;
  }
  return undefined;
}

// RFC 9110 field names (tokens), as the Gateway API schema's pattern.
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;

export function checkHeaderName(name: string): string | undefined {
  if (name.length > 256) return 'is longer than 256 characters';
  return HEADER_NAME.test(name) ? undefined : 'is not an HTTP header name (letters, digits and !#$%&\'*+-.^_`|~)';
}

/** Header and query values reach the data plane percent-encoded, so only what HTTP itself forbids is refused. */
export function checkHeaderValue(value: string): string | undefined {
  if (value.length > 4096) return 'is longer than 4096 characters';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
  return /[\x00-\x08\x0a-\x1f\x7f]/.test(value) ? 'must not hold control characters' : undefined;
}

/** A regular expression matched against a whole header or query value: one JavaScript (and so PCRE) compiles. */
export function checkValueRegex(pattern: string): string | undefined {
  const e = checkHeaderValue(pattern);
  if (e) return e;
  try {
    new RegExp(pattern);
  } catch (err) {
    return `is not a regular expression (${(err as Error).message})`;
  }
  return undefined;
}

export function checkObjectName(name: string): string | undefined {
  return name.length <= 253 && DNS_SUBDOMAIN.test(name) ? undefined : 'is not a valid object name (RFC 1123 subdomain)';
}

export function checkNamespaceName(name: string): string | undefined {
  return DNS_1123_LABEL.test(name) ? undefined : 'is not a valid namespace name (RFC 1123 label)';
}

export function checkServiceName(name: string): string | undefined {
  return DNS_1035_LABEL.test(name) ? undefined : 'is not a valid Service name (RFC 1035 label)';
}

export function checkPortName(name: string): string | undefined {
  return PORT_NAME.test(name) && /[a-z]/.test(name) ? undefined : 'is not a valid port name';
}

export function checkPortNumber(port: number): string | undefined {
  return Number.isInteger(port) && port >= 1 && port <= 65535 ? undefined : 'is not a port number (1-65535)';
}

/** Whether a certificate name (possibly *.wildcard) covers a server host (possibly *.wildcard). */
export function nameCoversHost(name: string, host: string): boolean {
  const n = name.toLowerCase();
  const h = host.toLowerCase();
  if (n === h) return true;
  if (!n.startsWith('*.') || h.startsWith('*.')) return false;
  const dot = h.indexOf('.');
  return dot > 0 && h.slice(dot + 1) === n.slice(2);
}

/** A user value cut to at most 80 characters, for messages and log fields. */
export function shortened(raw: string): string {
  return raw.length > 80 ? `${raw.slice(0, 77)}...` : raw;
}

/** Quotes a user value for a message, cut short and with control characters made visible. */
export function quote(raw: string): string {
  return JSON.stringify(shortened(raw));
}
