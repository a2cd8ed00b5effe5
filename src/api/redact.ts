// Git credentials live in ops repo URLs (https://user:token@host/...). They are stored because
// git needs them, and removed from everything that leaves the process: responses, logs, audit.

/** `https://user:secret@host` → `https://user:***@host`; `https://token@host` → `https://***@host`. */
export function redactUrlCredentials(url: string): string {
  return url.replace(
    /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/@?#]*)@/,
    (_match, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':');
      if (colon >= 0) return `${scheme}${userinfo.slice(0, colon)}:***@`;
      // a lone user name over http(s) is usually a token (https://ghp_xxx@github.com)
      return /^https?:\/\//i.test(scheme) ? `${scheme}***@` : `${scheme}${userinfo}@`;
    },
  );
}

/** Redacts credentials of every URL inside free text (error messages from git, pg, ...). */
export function redactSecrets(text: string): string {
  return text
    .replace(/([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^\s/@?#'"]*:)[^\s/@'"]*@/g, '$1$2***@')
    .replace(/(https?:\/\/)[^\s/:@'"]+@/gi, '$1***@')
    .replace(/kls_[A-Za-z0-9_-]{20,}/g, 'kls_***');
}

/** A history row's error as served: redacted again, since a SQL writer may have stored anything. */
export function redactHistoryError<T extends { error?: string | null | undefined }>(row: T): T {
  return typeof row.error === 'string' ? { ...row, error: redactSecrets(row.error) } : row;
}

/** A row's `last_error` as served, for the same reason. */
export function redactLastError<T extends { last_error?: string | null | undefined }>(row: T): T {
  return typeof row.last_error === 'string' ? { ...row, last_error: redactSecrets(row.last_error) } : row;
}
