// What a request asks for, in the API server's terms: resource or non-resource, Kubernetes verb,
// API group, resource, subresource, namespace, name. Authorization, the request log and routing
// all read this one parse, so they never disagree. Pure; mirrors the rules of upstream's
// RequestInfoFactory (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go), including its
// quirks: `GET /api/v1/namespaces/x` names namespace "x" as both namespace and name, and a list
// or watch whose field selector pins `metadata.name` carries that name (so RBAC `resourceNames`
// can allow it).

export interface RequestInfo {
  /** The URL path, as authorization of non-resource URLs sees it. */
  readonly path: string;
  readonly isResourceRequest: boolean;
  /**
   * Kubernetes' verb: get, list, watch, create, update, patch, delete, deletecollection for
   * resource requests; the lower-cased HTTP method for non-resource requests.
   */
  readonly verb: string;
  readonly apiGroup: string;
  readonly apiVersion: string;
  readonly namespace: string;
  readonly resource: string;
  readonly subresource: string;
  /** The object's name: from the path, or from a `metadata.name=` field selector of a list/watch. */
  readonly name: string;
  /** Path parts from the resource on: resource, name, subresource (routing reads these). */
  readonly parts: readonly string[];
}

const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

const METHOD_VERBS: Record<string, string> = { POST: 'create', GET: 'get', HEAD: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

/** Whether `?watch=` asks for a watch (Go's strconv.ParseBool truthy spellings, as the server decodes it). */
export function wantsWatch(query: URLSearchParams): boolean {
  const value = query.get('watch');
  return value !== null && ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value);
}

/** Why `name` cannot be one path segment (apimachinery's IsValidPathSegmentName wording). */
export function pathSegmentNameProblems(name: string): string[] {
  if (name === '.' || name === '..') return [`may not be '${name}'`];
  const problems: string[] = [];
  if (name.includes('/')) problems.push("may not contain '/'");
  if (name.includes('%')) problems.push("may not contain '%'");
  return problems;
}

export function isPathSegmentName(name: string): boolean {
  return name !== '' && pathSegmentNameProblems(name).length === 0;
}

/** The name an equality requirement on `metadata.name` pins, if the selector has one. */
function exactName(fieldSelector: string | null): string | undefined {
  if (!fieldSelector) return undefined;
  for (const term of fieldSelector.split(',')) {
    const m = /^\s*metadata\.name\s*(==|=)\s*(\S*)\s*$/.exec(term);
    if (m) return m[2];
  }
  return undefined;
}

export function requestInfo(method: string, url: URL): RequestInfo {
  const path = url.pathname;
  const nonResource: RequestInfo = { path, isResourceRequest: false, verb: method.toLowerCase(), apiGroup: '', apiVersion: '', namespace: '', resource: '', subresource: '', name: '', parts: [] };
  let parts = path.split('/').filter(Boolean).map(safeDecode);
  if (parts.length < 3 || (parts[0] !== 'api' && parts[0] !== 'apis')) return nonResource;
  const grouped = parts[0] === 'apis';
  parts = parts.slice(1);
  let apiGroup = '';
  if (grouped) {
    if (parts.length < 3) return nonResource;
    apiGroup = parts[0]!;
    parts = parts.slice(1);
  }
  const apiVersion = parts[0]!;
  parts = parts.slice(1);

  let verb: string;
  if (parts[0] === 'watch') {
    verb = 'watch';
    parts = parts.slice(1);
  } else verb = METHOD_VERBS[method.toUpperCase()] ?? '';

  let namespace = '';
  if (parts[0] === 'namespaces' && parts.length > 1) {
    namespace = parts[1]!;
    if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
  }
  const resource = parts[0] ?? '';
  let name = parts[1] ?? '';
  const subresource = parts[2] ?? '';

  if (name === '' && verb === 'get') {
    verb = wantsWatch(url.searchParams) ? 'watch' : 'list';
    const pinned = exactName(url.searchParams.get('fieldSelector'));
    if (pinned !== undefined && isPathSegmentName(pinned)) name = pinned;
  }
  if (name === '' && verb === 'delete') verb = 'deletecollection';
  return { path, isResourceRequest: true, verb, apiGroup, apiVersion, namespace, resource, subresource, name, parts };
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
