// Just enough of the mini-program runtime's `wx` for the client to run unchanged in Node:
// `wx.request` and `wx.uploadFile` over fetch/FormData, `wx.login` answered by the fake
// WeChat for the "person holding the phone", and the synchronous storage.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

function headersObject(headers) {
  const out = {};
  headers.forEach((value, key) => (out[key] = value));
  return out;
}

function withTimeout(timeout) {
  return timeout ? AbortSignal.timeout(timeout) : undefined;
}

/**
 * Installs `globalThis.wx`. `phone.openid` is who holds the phone (switch it to change
 * person); `wechat` is the fake WeChat that issues their `wx.login` codes.
 */
export function installWx({ wechat }) {
  const storage = new Map();
  /** @type {{ openid: string | undefined }} */
  const phone = { openid: undefined };
  const wx = {
    phone,
    storage,
    request(options) {
      const method = (options.method ?? 'GET').toUpperCase();
      let url = options.url;
      let body;
      if (options.data !== undefined) {
        if (method === 'GET') {
          // wx.request turns GET data into the query string.
          const q = new URLSearchParams(options.data).toString();
          if (q) url += (url.includes('?') ? '&' : '?') + q;
        } else {
          body = typeof options.data === 'string' || options.data instanceof ArrayBuffer ? options.data : JSON.stringify(options.data);
        }
      }
      fetch(url, { method, headers: options.header ?? {}, body, signal: withTimeout(options.timeout) })
        .then(async (res) => {
          const bytes = await res.arrayBuffer();
          let data;
          if (options.responseType === 'arraybuffer') data = bytes;
          else {
            data = new TextDecoder().decode(bytes);
            if ((options.dataType ?? 'json') === 'json') {
              try {
                data = JSON.parse(data);
              } catch {
                /* wx leaves unparsable text as it is */
              }
            }
          }
          options.success?.({ statusCode: res.status, header: headersObject(res.headers), data, cookies: [], errMsg: 'request:ok' });
        })
        .catch((e) => options.fail?.({ errMsg: `request:fail ${e.message}` }))
        .finally(() => options.complete?.());
      return { abort() {} };
    },
    uploadFile(options) {
      const form = new FormData();
      for (const [k, v] of Object.entries(options.formData ?? {})) form.append(k, String(v));
      let bytes;
      try {
        bytes = readFileSync(options.filePath);
      } catch (e) {
        options.fail?.({ errMsg: `uploadFile:fail ${e.message}` });
        return { abort() {} };
      }
      form.append(options.name, new Blob([bytes]), basename(options.filePath));
      fetch(options.url, { method: 'POST', headers: options.header ?? {}, body: form, signal: withTimeout(options.timeout) })
        .then(async (res) =>
          options.success?.({ statusCode: res.status, data: await res.text(), header: headersObject(res.headers), errMsg: 'uploadFile:ok' }),
        )
        .catch((e) => options.fail?.({ errMsg: `uploadFile:fail ${e.message}` }))
        .finally(() => options.complete?.());
      return { abort() {} };
    },
    login(options) {
      if (!phone.openid) {
        options.fail?.({ errMsg: 'login:fail no WeChat user on this phone' });
        return;
      }
      queueMicrotask(() => options.success?.({ code: wechat.loginCode(phone.openid), errMsg: 'login:ok' }));
    },
    getStorageSync: (key) => (storage.has(key) ? storage.get(key) : ''),
    setStorageSync: (key, value) => void storage.set(key, value),
    removeStorageSync: (key) => void storage.delete(key),
  };
  globalThis.wx = wx;
  return wx;
}
