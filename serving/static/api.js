// Calls to the API with the session's bearer token; failures become ApiFailure with the status.

const TOKEN_KEY = "fengqiao.token";

export class ApiFailure extends Error {
  constructor(status, code) {
    super(code);
    this.status = status;
    this.code = code;
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  signIn(token) { sessionStorage.setItem(TOKEN_KEY, token); },
  signOut() { sessionStorage.removeItem(TOKEN_KEY); },
};

async function call(url, options) {
  let response;
  try {
    response = await fetch(url, { ...options, headers: { Authorization: `Bearer ${session.token}`, Accept: "application/json", ...options.headers } });
  } catch (err) {
    throw new ApiFailure(0, "network");
  }
  if (!response.ok) {
    let code = "http_error";
    try { code = (await response.json()).error.code; } catch (err) { /* not our JSON: keep the status */ }
    throw new ApiFailure(response.status, code);
  }
  return response.json();
}

export async function getJson(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== ""));
  return call(query.toString() ? `${path}?${query}` : path, { headers: {} });
}

export async function postJson(path, body) {
  return call(path, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
}
