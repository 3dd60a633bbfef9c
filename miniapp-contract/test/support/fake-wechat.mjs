// A local stand-in for WeChat's server API on 127.0.0.1, answering as the real one does (the
// shapes of tests/src/fake_wechat.rs): errors as HTTP 200 with {errcode, errmsg}, appid and
// secret checked on every call, single-use codes that live 5 minutes, stable access tokens,
// and `countryCode` as a number in phone answers.
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';

const CODE_LIFETIME_MS = 5 * 60 * 1000;

export class FakeWeChat {
  constructor() {
    this.appid = `wx${randomUUID().replaceAll('-', '').slice(0, 16)}`;
    this.secret = randomUUID().replaceAll('-', '');
    this.loginCodes = new Map();
    this.phoneCodes = new Map();
    this.tokens = new Set();
    this.currentToken = undefined;
    /** @type {number[]} Errcodes the next jscode2session calls answer with, in order. */
    this.loginFailures = [];
    /** Root URL, known once started. */
    this.baseUrl = '';
    this.calls = { jscode2session: 0, stable_token: 0, getuserphonenumber: 0 };
  }

  async start() {
    this.server = createServer((req, res) => this.handle(req, res).catch((e) => {
      res.writeHead(500).end(String(e));
    }));
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.baseUrl = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  async stop() {
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** A fresh single-use `wx.login` code for `openid`. */
  loginCode(openid) {
    const code = randomUUID().replaceAll('-', '');
    this.loginCodes.set(code, { openid, issuedAt: Date.now(), used: false });
    return code;
  }

  /** The next `jscode2session` answers `{errcode}` (40029, 45011, 40226, -1 …). */
  failNextLogin(errcode) {
    this.loginFailures.push(errcode);
  }

  /** A fresh single-use phone code (the getPhoneNumber button's) for a mainland number. */
  phoneCode(phone) {
    const code = randomUUID().replaceAll('-', '');
    this.phoneCodes.set(code, { phone, issuedAt: Date.now(), used: false });
    return code;
  }

  async handle(req, res) {
    const url = new URL(req.url, this.baseUrl);
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const raw = Buffer.concat(chunks).toString('utf8');
    const json = (body, type = 'application/json') => {
      res.writeHead(200, { 'content-type': type });
      res.end(JSON.stringify(body));
    };
    const error = (errcode, errmsg) => json({ errcode, errmsg: `${errmsg} rid: ${randomUUID().slice(0, 8)}` });
    const credentials = (appid, secret) => {
      if (appid !== this.appid) return error(40013, 'invalid appid'), false;
      if (secret !== this.secret) return error(40125, 'invalid appsecret'), false;
      return true;
    };

    if (req.method === 'GET' && url.pathname === '/sns/jscode2session') {
      this.calls.jscode2session++;
      const q = url.searchParams;
      if (!credentials(q.get('appid'), q.get('secret'))) return;
      if (q.get('grant_type') !== 'authorization_code') return error(40002, 'invalid grant_type');
      const failure = this.loginFailures.shift();
      if (failure !== undefined) return error(failure, 'fake failure');
      const login = this.loginCodes.get(q.get('js_code') ?? '');
      if (!login || login.used || Date.now() - login.issuedAt > CODE_LIFETIME_MS) return error(40029, 'invalid code');
      login.used = true;
      // The real endpoint labels its JSON as text/plain.
      return json({ session_key: `${randomUUID().replaceAll('-', '').slice(0, 22)}==`, openid: login.openid }, 'text/plain');
    }
    if (req.method === 'POST' && url.pathname === '/cgi-bin/stable_token') {
      this.calls.stable_token++;
      let body;
      try {
        body = JSON.parse(raw);
      } catch {
        return error(47001, 'data format error');
      }
      if (body.grant_type !== 'client_credential') return error(40002, 'invalid grant_type');
      if (!credentials(body.appid, body.secret)) return;
      if (body.force_refresh || !this.currentToken) {
        this.currentToken = `fake-token-${randomUUID()}`;
        this.tokens.add(this.currentToken);
      }
      return json({ access_token: this.currentToken, expires_in: 7200 });
    }
    if (req.method === 'POST' && url.pathname === '/wxa/business/getuserphonenumber') {
      this.calls.getuserphonenumber++;
      const token = url.searchParams.get('access_token');
      if (!token) return error(41001, 'access_token missing');
      if (!this.tokens.has(token)) return error(40001, 'invalid credential, access_token is invalid or not latest');
      let body;
      try {
        body = JSON.parse(raw);
      } catch {
        return error(47001, 'data format error');
      }
      const phone = this.phoneCodes.get(body.code ?? '');
      if (!phone || phone.used || Date.now() - phone.issuedAt > CODE_LIFETIME_MS) return error(40029, 'invalid code');
      phone.used = true;
      return json({
        errcode: 0,
        errmsg: 'ok',
        phone_info: {
          phoneNumber: phone.phone,
          purePhoneNumber: phone.phone,
          countryCode: 86,
          watermark: { timestamp: Math.floor(Date.now() / 1000), appid: this.appid },
        },
      });
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errcode: 404, errmsg: 'no such api' }));
  }
}
