// Certificates for `tls: true`: a CA made at start and a server certificate it signs for the
// addresses clients use (127.0.0.1, localhost and the in-cluster `kubernetes.default.svc` names).
// Keys come from Node's native RSA generator (fast); node-forge only assembles and signs the
// X.509 certificates, which Node's crypto cannot create. Nothing is reused between starts: every
// simulator has its own CA, so a client that trusts one cannot talk to another by mistake.
import { generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';

export interface TlsMaterial {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

const generate = promisify(generateKeyPair);
const YEAR_MS = 365 * 24 * 3600 * 1000;
const SERVER_NAMES = ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'];

async function rsaKeys(): Promise<{ privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; pkcs8: string }> {
  const { privateKey, publicKey } = await generate('rsa', { modulusLength: 2048 });
  return {
    privateKey: forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }) as string) as forge.pki.rsa.PrivateKey,
    publicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string) as forge.pki.rsa.PublicKey,
    pkcs8: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

function certificate(publicKey: forge.pki.rsa.PublicKey, commonName: string): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // A positive serial: the leading byte's high bit must be clear (DER INTEGER).
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  // Back-dated an hour so a client whose clock lags a little still accepts it.
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + YEAR_MS);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  return cert;
}

export async function createTlsMaterial(): Promise<TlsMaterial> {
  const [caKeys, serverKeys] = await Promise.all([rsaKeys(), rsaKeys()]);
  const ca = certificate(caKeys.publicKey, 'keelson-sim-ca');
  ca.setIssuer(ca.subject.attributes);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(caKeys.privateKey, forge.md.sha256.create());

  const server = certificate(serverKeys.publicKey, 'kube-apiserver');
  server.setIssuer(ca.subject.attributes);
  server.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    // altName types: 2 = DNS name, 7 = IP address.
    { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, ...SERVER_NAMES.map((value) => ({ type: 2, value }))] },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
  ]);
  server.sign(caKeys.privateKey, forge.md.sha256.create());
  // forge writes CRLF line ends; PEM files conventionally use LF.
  const pem = (c: forge.pki.Certificate) => forge.pki.certificateToPem(c).replace(/\r\n/g, '\n');
  return { caPem: pem(ca), certPem: pem(server), keyPem: serverKeys.pkcs8 };
}
