// Key pairs for tenet-mcp's OAuth tests to forge tokens with (rotation, algorithm
// confusion): one per algorithm given, as {alg, kid, private_pem (PKCS#8), public_jwk}.
//
// Usage: node keys.mjs ALG... (RS256, ES256, EdDSA); prints a JSON array on stdout.
import { exportJWK, exportPKCS8, exportSPKI, generateKeyPair } from 'jose';

const out = [];
for (const [i, alg] of process.argv.slice(2).entries()) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `forged-${alg}-${i}-${Date.now()}`;
  out.push({
    alg,
    kid,
    private_pem: await exportPKCS8(privateKey),
    public_pem: await exportSPKI(publicKey),
    public_jwk: { ...(await exportJWK(publicKey)), alg, kid, use: 'sig' },
  });
}
console.log(JSON.stringify(out));
