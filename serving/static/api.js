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

export async function getJson(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== ""));
  const url = query.toString() ? `${path}?${query}` : path;
  let response;
  try {
    response = await fetch(url, { headers: { Authorization: `Bearer ${session.token}`, Accept: "application/json" } });
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
