// A certified OpenID Connect provider (the npm package `oidc-provider`) for the test suite.
//
// Started by tests/support/oidc.py as `node tests/support/oidc_provider.mjs CONFIG_JSON`; it
// listens on 127.0.0.1 (port 0: the OS picks one), prints one JSON line `{"issuer": ...}` on
// standard output when it is ready and serves until it is killed.
//
// CONFIG_JSON: {"clients": [client metadata...], "accounts": {"<login>": {claims...}}}
// - clients are static (client_id, client_secret, redirect_uris, post_logout_redirect_uris,
//   optionally backchannel_logout_uri);
// - accounts are the people who can sign in on the development login form (any password);
//   their claims (email, email_verified, name, groups, ...) go into the ID token, since
//   `conformIdTokenClaims` is off;
// - consent is granted automatically (first-party clients), so the login form is the only page.
import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

const config = JSON.parse(process.argv[2] || '{}');
const accounts = config.accounts || {};

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key-1', use: 'sig', alg: 'RS256' };

const server = http.createServer();

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    clients: config.clients || [],
    jwks: { keys: [signingKey] },
    cookies: { keys: ['wertkette-test-cookie-key'] },
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      // Group membership comes with the profile, as a provider's claim mapper would add it.
      profile: ['name', 'groups'],
    },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
    },
    // The provider refuses outgoing requests to loopback addresses (SSRF protection); the
    // portal under test lives on 127.0.0.1, so back-channel logout calls go there directly.
    fetch: (url, options) => {
      const { dispatcher: _ignored, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    async findAccount(ctx, sub) {
      const claims = accounts[sub];
      if (!claims) {
        return undefined;
      }
      return {
        accountId: sub,
        async claims() {
          return { sub, ...claims };
        },
      };
    },
    // First-party clients: grant what they ask for without a consent page.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        return ctx.oidc.provider.Grant.find(grantId);
      }
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email profile');
      grant.addOIDCClaims(['email', 'email_verified', 'name', 'groups']);
      await grant.save();
      return grant;
    },
  });
  provider.proxy = false;
  provider.on('backchannel.error', (ctx, error, client) => {
    process.stderr.write(`backchannel logout to ${client.clientId} failed: ${error.message}\n`);
  });
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
