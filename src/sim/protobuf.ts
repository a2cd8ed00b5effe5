// Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`), which
// kubectl 1.32 sends for built-in kinds in some commands (`create token`, `auth can-i`,
// `auth whoami`, `create namespace`…) with no fallback to JSON. The envelope is the 4-byte magic
// `k8s\0` and a runtime.Unknown message whose `raw` field holds the object's own message.
//
// Decoding needs each kind's field numbers (from its generated.proto in k8s.io/api): SCHEMAS
// holds those of the kinds decoded so far; a kind without a schema is answered 415, which names
// the media types that do work. To support another kind, add its message and the messages it
// uses to SCHEMAS (unknown fields are skipped, so a partial message is fine).
import { StatusError } from './status.ts';

export const PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';

type Scalar = 'string' | 'bytes' | 'int64' | 'bool';
interface Field {
  readonly name: string;
  readonly type: Scalar | 'stringMap' | Message;
  readonly repeated?: boolean;
}
type Message = { readonly [fieldNumber: number]: Field };

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]); // "k8s\0"

const TYPE_META: Message = { 1: { name: 'apiVersion', type: 'string' }, 2: { name: 'kind', type: 'string' } };
const UNKNOWN: Message = { 1: { name: 'typeMeta', type: TYPE_META }, 2: { name: 'raw', type: 'bytes' } };

const OBJECT_META: Message = {
  1: { name: 'name', type: 'string' },
  2: { name: 'generateName', type: 'string' },
  3: { name: 'namespace', type: 'string' },
  11: { name: 'labels', type: 'stringMap' },
  12: { name: 'annotations', type: 'stringMap' },
  14: { name: 'finalizers', type: 'string', repeated: true },
};

const RESOURCE_ATTRIBUTES: Message = {
  1: { name: 'namespace', type: 'string' },
  2: { name: 'verb', type: 'string' },
  3: { name: 'group', type: 'string' },
  4: { name: 'version', type: 'string' },
  5: { name: 'resource', type: 'string' },
  6: { name: 'subresource', type: 'string' },
  7: { name: 'name', type: 'string' },
};
const NON_RESOURCE_ATTRIBUTES: Message = { 1: { name: 'path', type: 'string' }, 2: { name: 'verb', type: 'string' } };

/** Top-level messages by `apiVersion/kind`. */
const SCHEMAS: Record<string, Message> = {
  'authorization.k8s.io/v1/SelfSubjectAccessReview': {
    1: { name: 'metadata', type: OBJECT_META },
    2: { name: 'spec', type: { 1: { name: 'resourceAttributes', type: RESOURCE_ATTRIBUTES }, 2: { name: 'nonResourceAttributes', type: NON_RESOURCE_ATTRIBUTES } } },
  },
  'authorization.k8s.io/v1/SelfSubjectRulesReview': {
    1: { name: 'metadata', type: OBJECT_META },
    2: { name: 'spec', type: { 1: { name: 'namespace', type: 'string' } } },
  },
  'authentication.k8s.io/v1/SelfSubjectReview': { 1: { name: 'metadata', type: OBJECT_META } },
  'authentication.k8s.io/v1/TokenRequest': {
    1: { name: 'metadata', type: OBJECT_META },
    2: {
      name: 'spec',
      type: {
        1: { name: 'audiences', type: 'string', repeated: true },
        3: {
          name: 'boundObjectRef',
          type: { 1: { name: 'kind', type: 'string' }, 2: { name: 'apiVersion', type: 'string' }, 3: { name: 'name', type: 'string' }, 4: { name: 'uid', type: 'string' } },
        },
        4: { name: 'expirationSeconds', type: 'int64' },
      },
    },
  },
};

export function isProtobuf(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase() === PROTOBUF_CONTENT_TYPE;
}

class Reader {
  private pos = 0;
  private readonly buf: Buffer;

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const byte = this.buf[this.pos++]!;
      result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return result;
      scale *= 128;
      if (scale > 2 ** 63) throw new Error('varint too long');
    }
  }

  bytes(): Buffer {
    const length = this.varint();
    if (this.pos + length > this.buf.length) throw new Error('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wireType}`);
  }
}

function decodeMessage(buf: Buffer, schema: Message): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const r = new Reader(buf);
  while (!r.done) {
    const key = r.varint();
    const field = schema[Math.floor(key / 8)];
    const wireType = key & 7;
    if (!field) {
      r.skip(wireType);
      continue;
    }
    let value: unknown;
    if (field.type === 'int64') value = r.varint();
    else if (field.type === 'bool') value = r.varint() !== 0;
    else if (field.type === 'string') value = r.bytes().toString('utf8');
    else if (field.type === 'bytes') value = r.bytes();
    else if (field.type === 'stringMap') {
      const entry = decodeMessage(r.bytes(), { 1: { name: 'key', type: 'string' }, 2: { name: 'value', type: 'string' } });
      const map = (out[field.name] ??= {}) as Record<string, string>;
      map[String(entry.key ?? '')] = String(entry.value ?? '');
      continue;
    } else value = decodeMessage(r.bytes(), field.type);
    if (field.repeated) ((out[field.name] ??= []) as unknown[]).push(value);
    else out[field.name] = value;
  }
  return out;
}

/** The JSON form of a protobuf-encoded object, or a 415/400 Status the client can act on. */
export function decodeProtobufObject(body: Buffer): Record<string, unknown> {
  if (body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new StatusError(400, 'BadRequest', 'error decoding request body: protobuf body does not begin with the k8s\\0 envelope');
  }
  let kind = '';
  try {
    const unknown = decodeMessage(body.subarray(MAGIC.length), UNKNOWN);
    const typeMeta = (unknown.typeMeta ?? {}) as { apiVersion?: string; kind?: string };
    const apiVersion = typeMeta.apiVersion ?? '';
    kind = typeMeta.kind ?? '';
    const schema = SCHEMAS[`${apiVersion}/${kind}`];
    if (!schema) {
      throw new StatusError(415, 'UnsupportedMediaType', `the simulator cannot decode ${kind || 'this kind'} (${apiVersion}) from protobuf - send it as application/json`);
    }
    return { apiVersion, kind, ...decodeMessage((unknown.raw as Buffer | undefined) ?? Buffer.alloc(0), schema) };
  } catch (error) {
    if (error instanceof StatusError) throw error;
    throw new StatusError(400, 'BadRequest', `error decoding request body: ${(error as Error).message}${kind ? ` in protobuf ${kind}` : ''}`);
  }
}
