// A real authorization server for tenet-mcp's OAuth tests: oidc-provider (OpenID
// Certified), issuing JWT access tokens by client credentials with a resource
// indicator (RFC 8707), on a loopback port of its own choosing.
//
// Usage: node server.mjs CONFIG_JSON
//   CONFIG_JSON: {"clients": [{"client_id", "client_secret", "scope"}], "scopes": [...],
//                 "alg": "RS256" | "ES256" | "EdDSA", "ttl": seconds}
// Prints one line on stdout once listening: {"issuer": "http://127.0.0.1:PORT"}.
// Every token's audience is the resource indicator the client asked for; the test
// decides which are right. Runs until killed.
import http from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const config = JSON.parse(process.argv[2] ?? '{}');
const alg = config.alg ?? 'RS256';
const scopes = config.scopes ?? [];

const { privateKey } = await generateKeyPair(alg, { extractable: true });
const signing = { ...(await exportJWK(privateKey)), alg, use: 'sig', kid: `test-${alg}` };

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: (config.clients ?? []).map((client) => ({
    client_id: client.client_id,
    client_secret: client.client_secret,
    scope: client.scope,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  jwks: { keys: [signing] },
  scopes,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resourceIndicator) => ({
        scope: scopes.join(' '),
        audience: resourceIndicator,
        accessTokenTTL: config.ttl ?? 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg } },
      }),
    },
  },
});
provider.on('server_error', (_ctx, error) => console.error('oidc-provider:', error));
server.on('request', provider.callback());
console.log(JSON.stringify({ issuer }));
