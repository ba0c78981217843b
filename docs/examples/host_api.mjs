// A host application talking to domainguard's HTTP API with Node's fetch
// (Node 18+). Configure with DOMAINGUARD_API_URL (default
// http://127.0.0.1:8081) and DOMAINGUARD_API_TOKEN (a token from the
// server's DOMAINGUARD_API_TOKENS).
//
//   node host_api.mjs ada@example.org u-1 [EMAIL USER_ID ...]
import { randomUUID } from "node:crypto";

const API = process.env.DOMAINGUARD_API_URL ?? "http://127.0.0.1:8081";
const auth = { Authorization: `Bearer ${process.env.DOMAINGUARD_API_TOKEN}` };

// Send accounts.email.verified in binary mode: attributes in ce-* headers.
async function emailVerified(userId, email, verifiedAt) {
  const res = await fetch(`${API}/v1/events`, {
    method: "POST",
    headers: {
      ...auth,
      "Content-Type": "application/json",
      "ce-specversion": "1.0",
      "ce-id": randomUUID(), // keep it when retrying: the same id is stored once
      "ce-source": "https://host.example/accounts",
      "ce-type": "io.domainguard.accounts.email.verified",
    },
    body: JSON.stringify({ user_id: userId, email, verified_at: verifiedAt }),
  });
  if (res.status !== 202) throw new Error(`event refused: ${res.status} ${await res.text()}`);
  return res.json();
}

// true when the address may receive a password-reset mail; null when
// domainguard does not watch it (fall back to the host's own rules).
async function trustedForReset(email, userId) {
  const q = userId ? `?user_id=${encodeURIComponent(userId)}` : "";
  const res = await fetch(`${API}/v1/addresses/${encodeURIComponent(email)}${q}`, { headers: auth });
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`lookup failed: ${res.status} ${await res.text()}`);
  return (await res.json()).trusted_for_reset;
}

const args = process.argv.length > 2 ? process.argv.slice(2) : ["ada@example.org", "u-1"];
for (let i = 0; i + 1 < args.length; i += 2) {
  const [email, user] = [args[i], args[i + 1]];
  const accepted = await emailVerified(user, email, "2025-01-02T03:04:05Z");
  console.log(email, "accepted", accepted.id, "sequence", accepted.sequence);
  console.log(email, "trusted_for_reset", JSON.stringify(await trustedForReset(email, user)));
}
