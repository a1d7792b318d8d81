// The admin console in a real browser (Debian's chromium, driven by
// playwright-core): one scenario per run, named by the first argument.
//
//   invite  a manager invites; a second manager approves; the invitee
//           follows the link, sets a password, enrols TOTP; a role is
//           granted and the person reaches the app; the role is revoked and
//           the next request is 403
//   review  the access review flags an inactive account; bulk disable
//   screens an administrator's tour of the other main screens (tenants,
//           audit log, API tokens, break-glass, visitors), each checked
//           and photographed
//
// Input (environment): GH_URL (https://127.0.0.1:PORT), GH_OUT (screenshot
// directory), GH_PW (the managers' password), GH_M1, GH_M2 (manager
// emails), GH_STALE (review: the inactive account), GH_ADMIN and
// GH_ADMIN_PW (screens: an administrator). Prints one JSON line
// {"ok": true, ...} or {"ok": false, "error": "..."}; exit status 0 or 1.
'use strict';
const crypto = require('crypto');
const path = require('path');
const { chromium } = require('playwright-core');

const URL_ = process.env.GH_URL;
const OUT = process.env.GH_OUT;
const PW = process.env.GH_PW;
const STEP_MS = 15000;          // every wait is bounded

// ---- RFC 6238 TOTP (SHA-1, 6 digits, 30 s) from a base32 secret ----
function base32(s) {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, val = 0;
  const out = [];
  for (const c of s.replace(/=+$/, '').toUpperCase()) {
    const i = abc.indexOf(c);
    if (i < 0) throw new Error('bad base32');
    val = (val << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((val >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function totp(secret, t = Date.now() / 1000) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(t / 30)));
  const h = crypto.createHmac('sha1', base32(secret)).update(counter).digest();
  const off = h[h.length - 1] & 0x0f;
  const n = (h.readUInt32BE(off) & 0x7fffffff) % 1000000;
  return String(n).padStart(6, '0');
}

// ---- helpers ----
function check(cond, what) {
  if (!cond) throw new Error(what);
}

// Click (or submit) and wait for the page it leads to.
async function nav(page, act) {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), act()]);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(OUT, name + '.png'), fullPage: true });
}

// email -> {secret, step}: kept in GH_STATE between scenarios (one
// browser run each); a code is accepted once, so a sign-in within the time
// step of the last accepted code waits for the next step.
const fs = require('fs');
const STATE = process.env.GH_STATE;
const secrets = STATE && fs.existsSync(STATE) ? JSON.parse(fs.readFileSync(STATE, 'utf8')) : {};

function saveState() {
  if (STATE) fs.writeFileSync(STATE, JSON.stringify(secrets), { mode: 0o600 });
}

async function freshCode(email) {
  const s = secrets[email];
  for (let i = 0; i < 40 && Math.floor(Date.now() / 30000) <= s.step; i++) {
    await new Promise((res) => setTimeout(res, 1000));
  }
  s.step = Math.floor(Date.now() / 30000);
  saveState();
  return totp(s.secret);
}

// Sign in through the login page; enrol TOTP when the tenant asks, or
// answer the second step with a fresh code.
async function signIn(page, email, password) {
  await page.goto(URL_ + '/.gatehouse/login?rd=%2F.gatehouse%2Fadmin%2F');
  await page.fill('#username', email);
  await page.fill('#password', password);
  await nav(page, () => page.click('button[type=submit]'));
  const msg = await page.$('#message');
  if (msg) throw new Error('sign-in of ' + email + ' refused: ' + (await msg.textContent()));
  if (page.url().includes('/.gatehouse/mfa/enroll')) {
    await enrolTotp(page, email);
  } else if (page.url().includes('/.gatehouse/mfa')) {
    await page.fill('#code', await freshCode(email));
    await nav(page, () => page.click('button[type=submit]'));
  }
}

async function enrolTotp(page, email, screenshot) {
  await nav(page, () => page.click('button[type=submit]'));
  const secret = (await page.textContent('#secret')).trim();
  secrets[email] = { secret, step: 0 };
  if (screenshot) await shot(page, screenshot);
  await page.fill('#code', await freshCode(email));
  await nav(page, () => page.click('button[type=submit]'));
  check(await page.$('#recovery-codes'), 'no recovery codes after enrolment');
  await nav(page, () => page.click('#continue'));
}

async function status(page, p) {
  const r = await page.goto(URL_ + p);
  return r.status();
}

async function scenarioInvite(browser) {
  const email = 'newcomer@acme.example';
  const c1 = await browser.newContext({ ignoreHTTPSErrors: true });
  const c2 = await browser.newContext({ ignoreHTTPSErrors: true });
  const c3 = await browser.newContext({ ignoreHTTPSErrors: true });
  const m1 = await c1.newPage(), m2 = await c2.newPage(), inv = await c3.newPage();
  for (const p of [m1, m2, inv]) p.setDefaultTimeout(STEP_MS);

  // 1. the first manager invites (as a visitor: no app yet)
  await signIn(m1, process.env.GH_M1, PW);
  check(m1.url().endsWith('/.gatehouse/admin/'), 'manager 1 not in the console: ' + m1.url());
  await shot(m1, '01-people');
  await m1.goto(URL_ + '/.gatehouse/admin/invites');
  await m1.fill('#inv-email', email);
  await m1.fill('#inv-name', 'New Comer');
  await m1.fill('#inv-roles', 'visitor');
  await nav(m1, () => m1.click('#invite'));
  check((await m1.textContent('#done')).includes('waits'), 'invitation not recorded');
  await shot(m1, '02-invitation-pending');

  // 2. the second manager approves and gets the link
  await signIn(m2, process.env.GH_M2, PW);
  await m2.goto(URL_ + '/.gatehouse/admin/invites');
  const row = m2.locator('tr.invite', { hasText: email });
  await nav(m2, () => row.locator('button.approve').click());
  const link = (await m2.textContent('#invite-link')).trim();
  check(link.includes('/.gatehouse/join?token='), 'no link: ' + link);
  await shot(m2, '03-invitation-approved');

  // 3. the invitee sets a password, signs in, enrols TOTP
  await inv.goto(link);
  check((await inv.textContent('#join-email')).trim() === email, 'wrong invitee');
  await shot(inv, '04-join');
  await inv.fill('#password', 'newcomer chooses a long passphrase 2026');
  await nav(inv, () => inv.click('#join'));
  check(await inv.$('#notice'), 'password not set');
  await inv.goto(URL_ + '/.gatehouse/login?rd=%2Fapp');
  await inv.fill('#username', email);
  await inv.fill('#password', 'newcomer chooses a long passphrase 2026');
  await nav(inv, () => inv.click('button[type=submit]'));
  check(inv.url().includes('/.gatehouse/mfa/enroll'), 'tenant requires MFA but no enrolment: ' + inv.url());
  await enrolTotp(inv, email, '05-enrol-totp');
  check(await status(inv, '/app') === 403, 'a visitor reached the app');

  // 4. a role is granted: the person reaches the app
  await m1.goto(URL_ + '/.gatehouse/admin/?q=newcomer');
  await nav(m1, () => m1.click('a.person'));
  await m1.fill('#grant-role', 'member');
  await nav(m1, () => m1.click('#grant'));
  check((await m1.textContent('#done')).includes('grant'), 'grant not done');
  await shot(m1, '06-person');
  check(await status(inv, '/app') === 200, 'granted role did not reach the app');

  // 5. revoked: the very next request is 403
  const revoke = m1.locator('#roles tr', { hasText: 'member' }).locator('button[name=revoke]');
  await nav(m1, () => revoke.click());
  check(await status(inv, '/app') === 403, 'revoked role still reaches the app');
  await shot(inv, '07-revoked-403');
  return { invitee: email };
}

async function scenarioReview(browser) {
  const c1 = await browser.newContext({ ignoreHTTPSErrors: true });
  const m1 = await c1.newPage();
  m1.setDefaultTimeout(STEP_MS);
  await signIn(m1, process.env.GH_M1, PW);
  await m1.goto(URL_ + '/.gatehouse/admin/review');
  const row = m1.locator('tr.flagged', { hasText: process.env.GH_STALE });
  check(await row.count() === 1, 'inactive account not flagged');
  check(await row.locator('input[type=checkbox]').isChecked(), 'flagged account not checked');
  await shot(m1, '08-access-review');
  await nav(m1, () => m1.click('#disable-flagged'));
  check((await m1.textContent('#done')).includes('1'), 'bulk disable did not report one account');
  await m1.goto(URL_ + '/.gatehouse/admin/?q=' + encodeURIComponent(process.env.GH_STALE));
  check((await m1.textContent('#people')).includes('disabled'), 'account not disabled');
  await shot(m1, '09-after-bulk-disable');
  return {};
}

async function scenarioScreens(browser) {
  const c = await browser.newContext({ ignoreHTTPSErrors: true });
  const a = await c.newPage();
  a.setDefaultTimeout(STEP_MS);
  await signIn(a, process.env.GH_ADMIN, process.env.GH_ADMIN_PW);
  const tour = [
    ['tenants', '10-tenants', 'acme'],
    ['audit', '11-audit-log', 'login.success'],
    ['tokens', '12-api-tokens', 'API tokens'],
    ['breakglass', '13-break-glass', 'reak-glass'],
    ['?visitors=1', '14-visitors', 'visitor-apps'],
  ];
  for (const [where, name, expect] of tour) {
    const r = await a.goto(URL_ + '/.gatehouse/admin/' + where);
    check(r.status() === 200, where + ' answered ' + r.status());
    check((await a.content()).includes(expect), where + ' lacks ' + expect);
    await shot(a, name);
  }
  return {};
}

(async () => {
  const which = process.argv[2];
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    const res = which === 'invite' ? await scenarioInvite(browser)
      : which === 'review' ? await scenarioReview(browser)
      : which === 'screens' ? await scenarioScreens(browser)
        : (() => { throw new Error('unknown scenario ' + which); })();
    console.log(JSON.stringify({ ok: true, ...res }));
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack || e) }));
  process.exit(1);
});
