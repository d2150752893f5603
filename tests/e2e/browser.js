#!/usr/bin/env node
/* tally - the page in a real browser. Drives Debian's chromium, headless,
 * through playwright-core against a running stack, the way a person uses
 * the page. tests/integration/browser.bats starts the stack, runs this
 * once, and has one test per scenario:
 *
 *   node browser.js [SCENARIO...]   (all by default; see SCENARIOS below)
 *
 * One browser runs the scenarios in turn, each in fresh contexts. Prints
 * "ok NAME" or "not ok NAME" and the reason for each; exits 1 if any
 * failed.
 *
 * Environment:
 *   TALLY_URL             the stack's address (required)
 *   TALLY_SCREENSHOT_DIR  where screenshots go (required by "screenshots",
 *                         "database-outage" and "badges")
 *   TALLY_DB_STOP, TALLY_DB_START  shell commands that stop and start the
 *                         stack's PostgreSQL ("database-outage")
 *   TALLY_DB_SET_BIG      a shell command that sets the counter to
 *                         9007199254740993 ("big-number")
 *   TALLY_E2E_RESULTS     if set, a directory that gets NAME.result per
 *                         scenario: "ok", or "not ok" and the reason
 *   TALLY_ORIGIN_ALLOWED, TALLY_ORIGIN_OTHER  two other origins serving a
 *                         page, the first listed in the stack's
 *                         TALLY_CORS_WRITE_ORIGINS ("cross-origin"; the
 *                         second shows badges too: "badges")
 *   CHROMIUM              the browser (default /usr/bin/chromium)
 *
 * Every scenario also fails on a console error or warning, an uncaught
 * exception or a Content-Security-Policy violation in the page. */
'use strict';

const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { promisify } = require('node:util');
const { chromium } = require('playwright-core');

const BASE = requireEnv('TALLY_URL');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
/* The flags Debian's chromium needs to run headless as root here;
 * playwright adds a new, empty --user-data-dir of its own. */
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu',
	'--no-first-run', '--disable-background-networking',
	'--disable-component-update', '--disable-sync'];
const STEP_TIMEOUT_MS = 15000;
const SCENARIO_TIMEOUT_MS = 45000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function requireEnv(name) {
	const value = process.env[name];
	if (!value)
		throw new Error(`${name} is not set`);
	return value;
}

/* --- the API, straight from node: the truth the page is checked against */

async function apiCounter() {
	const response = await fetch(`${BASE}/read`, { cache: 'no-store' });
	assert.equal(response.status, 200, 'GET /read answers 200');
	return (await response.json()).counter;
}

/* --- waiting ------------------------------------------------------------- */

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/* Polls check() until it returns a truthy value (returned), or fails
 * after timeoutMs with `what` and the last value seen. */
async function waitUntil(what, check, timeoutMs = STEP_TIMEOUT_MS) {
	const deadline = Date.now() + timeoutMs;
	let last;
	for (;;) {
		last = await check();
		if (last)
			return last;
		if (Date.now() > deadline)
			throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
		await sleep(100);
	}
}

/* --- what goes wrong inside the page --------------------------------- */

/* Collects console errors and warnings, uncaught exceptions and CSP
 * violations. Some console errors are expected at times (the browser
 * logs every 503 while the database is down): tolerate(pattern) lets
 * matching ones pass until the returned function is called. */
class PageWatch {
	constructor() {
		this.problems = [];
		this.tolerated = [];
	}

	async attach(context) {
		await context.exposeBinding('tallyReportViolation', (source, v) =>
			this.problems.push(`CSP violation: ${v}`));
		await context.addInitScript(() => {
			document.addEventListener('securitypolicyviolation', (e) =>
				window.tallyReportViolation(
					`${e.violatedDirective} blocked ${e.blockedURI || 'inline code'}`));
		});
	}

	watch(page) {
		page.on('console', (msg) => {
			if (msg.type() !== 'error' && msg.type() !== 'warning')
				return;
			const text = `console ${msg.type()}: ${msg.text()} (${msg.location().url || 'page'})`;
			if (this.tolerated.some((pattern) => pattern.test(msg.text())))
				return;
			this.problems.push(text);
		});
		page.on('pageerror', (error) =>
			this.problems.push(`uncaught exception: ${error.message}`));
	}

	tolerate(pattern) {
		this.tolerated.push(pattern);
		return () => {
			this.tolerated = this.tolerated.filter((p) => p !== pattern);
		};
	}

	/* Takes out the problems that match; returns how many there were. */
	take(pattern) {
		const before = this.problems.length;
		this.problems = this.problems.filter((p) => !pattern.test(p));
		return before - this.problems.length;
	}

	assertClean() {
		assert.deepEqual(this.problems, [],
			'no console errors, uncaught exceptions or CSP violations');
	}
}

/* --- the browser and the page ------------------------------------------ */

function launchBrowser() {
	return chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: CHROMIUM_FLAGS,
	});
}

/* The contexts of one scenario: opened fresh, all closed at its end. */
class Session {
	constructor(browser) {
		this.browser = browser;
		this.contexts = [];
	}

	/* Opens the page (at where: a path, / by default, or a whole URL) in a new context;
	 * resolves to { page, watch } once the counter (unless counter is
	 * false) and the clock show values from the server. */
	async open(options = {}, where = '/', counter = true) {
		const context = await this.browser.newContext({
			viewport: { width: 1280, height: 800 },
			...options,
		});
		this.contexts.push(context);
		const watch = new PageWatch();
		await watch.attach(context);
		const page = await context.newPage();
		page.setDefaultTimeout(STEP_TIMEOUT_MS);
		watch.watch(page);
		const answer = await page.goto(/^https?:/.test(where) ? where : `${BASE}${where}`);
		assert.equal(answer.status(), 200, 'the page answers 200');
		if (options.javaScriptEnabled !== false) {
			if (counter)
				await page.locator('#counter[data-state="ok"]').waitFor();
			await page.locator('#server-time[datetime]').waitFor();
		}
		return { page, watch };
	}

	async close() {
		await Promise.all(this.contexts.map((c) => c.close().catch(() => {})));
	}
}

/* The counter as the page shows it: the number a person reads, checked
 * against the machine-readable value beside it. Both are read in one
 * turn of the page's script (app.js sets them together), so an update
 * between two reads cannot set them apart. */
async function pageCounter(page) {
	const { value, text } = await page.locator('#counter').evaluate((el) =>
		({ value: el.getAttribute('data-value'), text: el.textContent }));
	const shown = text.replace(/[^0-9]/g, '');
	assert.equal(shown, value, 'the counter shows its value');
	return Number(value);
}

async function waitForCounter(page, expected) {
	await waitUntil(`the page to show the counter ${expected}`,
		async () => (await pageCounter(page)) === expected);
}

const isWrite = (r) => new URL(r.url()).pathname === '/write' &&
	(r.request ? r.request() : r).method() === 'POST';

/* Does `act` and resolves to the JSON of the /write answer it caused. */
async function writeBy(page, act) {
	const [answer] = await Promise.all([page.waitForResponse(isWrite), act()]);
	assert.equal(answer.status(), 200, 'POST /write answers 200');
	return (await answer.json()).counter;
}

/* Records the Idempotency-Key of every /write the page sends. */
function recordWriteKeys(page) {
	const keys = [];
	page.on('request', (r) => {
		if (isWrite(r))
			keys.push(r.headers()['idempotency-key']);
	});
	return keys;
}

function assertFreshKeys(keys, count) {
	assert.equal(keys.length, count, `${count} requests to /write`);
	keys.forEach((key) => assert.match(key, UUID, 'the key is a UUID'));
	assert.equal(new Set(keys).size, count, 'every click has its own key');
}

async function screenshot(page, name) {
	const dir = requireEnv('TALLY_SCREENSHOT_DIR');
	fs.mkdirSync(dir, { recursive: true });
	const file = path.join(dir, name);
	await page.screenshot({ path: file, fullPage: true });
	console.log(`screenshot: ${file}`);
}

const runShell = promisify(execFile);

async function shell(variable) {
	await runShell('bash', ['-c', requireEnv(variable)], { timeout: 60000 });
}

/* --- scenarios ---------------------------------------------------------- */

/* The clock shows the server's time and moves; the visitor's address,
 * the proxy chain and the counter are the server's. */
async function facts(session) {
	const { page, watch } = await session.open();
	const clock = page.locator('#server-time');
	// Both read at once: the clock ticks between two separate reads.
	const [first, shown] = await clock.evaluate(
		(el) => [el.getAttribute('datetime'), el.textContent]);
	const firstMs = Date.parse(first);
	assert.ok(Math.abs(firstMs - Date.now()) < 60000,
		`the server time ${first} is about now`);
	assert.equal(shown, first.slice(11, 19), 'the clock shows HH:MM:SS (UTC)');
	const next = await waitUntil('the clock to move', async () => {
		const t = await clock.getAttribute('datetime');
		return t !== first && t;
	}, 5000);
	assert.ok(Date.parse(next) > firstMs, 'the clock moves forward');

	assert.equal((await page.locator('#visitor-ip').textContent()).trim(),
		'127.0.0.1', "the visitor's address");
	assert.match(await page.locator('#proxy-chain').textContent(),
		/directly/, 'no proxy in between');
	assert.equal(await pageCounter(page), await apiCounter(),
		'the counter is the one GET /read answers');
	assert.equal(await page.getByRole('status', { name: 'Counter' })
		.getAttribute('aria-live'), 'polite', 'the counter is a labelled live region');
	assert.equal(await page.locator('#notice').isVisible(), false,
		'no problem to report');

	/* Behind proxies: the next /time shows the chain in order. */
	await page.setExtraHTTPHeaders({ 'X-Forwarded-For': '203.0.113.7, 10.0.0.2' });
	await waitUntil('the proxy chain', async () =>
		(await page.locator('#proxy-chain').textContent()) ===
		'203.0.113.7 → 10.0.0.2', 5000);

	/* The watch would see a violation: an inline style is refused. */
	await page.evaluate(() => {
		const style = document.createElement('style');
		style.textContent = 'body { color: red }';
		document.head.append(style);
	});
	await waitUntil('the CSP violation to be reported',
		() => watch.problems.some((p) => p.startsWith('CSP violation')), 5000);
	assert.ok(watch.take(/style-src|inline style/) >= 1);
	watch.assertClean();
}

/* Click, Enter and Space each count once and the page shows what
 * /write answered; each sends its own Idempotency-Key. */
async function increment(session) {
	const { page, watch } = await session.open();
	const keys = recordWriteKeys(page);
	const button = page.getByRole('button', { name: 'Increment' });

	let value = await writeBy(page, () => button.click());
	await waitForCounter(page, value);
	assert.equal(await apiCounter(), value, 'the database has the click');

	/* From the keyboard alone: Tab reaches the button. */
	await page.locator('body').focus();
	await waitUntil('Tab to reach the button', async () => {
		await page.keyboard.press('Tab');
		return page.evaluate(() => document.activeElement.id === 'increment');
	}, 5000);
	const outline = await button.evaluate((b) => getComputedStyle(b).outlineStyle);
	assert.notEqual(outline, 'none', 'the focused button shows a focus ring');

	for (const key of ['Enter', 'Space']) {
		const before = value;
		value = await writeBy(page, () => page.keyboard.press(key));
		assert.equal(value, before + 1, `${key} counts once`);
		await waitForCounter(page, value);
		assert.equal(await apiCounter(), value, `the database has the ${key}`);
	}
	assertFreshKeys(keys, 3);
	watch.assertClean();
}

/* Five quick clicks: five increments, none lost, and the page ends on
 * the highest value /write answered. */
async function quickClicks(session) {
	const { page, watch } = await session.open();
	const keys = recordWriteKeys(page);
	const answers = [];
	page.on('response', (r) => {
		if (isWrite(r))
			answers.push(r.json().then((body) => [r.status(), body.counter]));
	});
	const before = await apiCounter();
	const button = page.getByRole('button', { name: 'Increment' });
	for (let i = 0; i < 5; i++)
		await button.click();
	await waitUntil('five answers from /write', () => answers.length === 5);
	const results = await Promise.all(answers);
	results.forEach(([status]) => assert.equal(status, 200));
	const values = results.map(([, v]) => v).sort((a, b) => a - b);
	assert.deepEqual(values, [1, 2, 3, 4, 5].map((i) => before + i),
		'each click counted once');
	await waitForCounter(page, before + 5);
	assert.equal(await apiCounter(), before + 5, 'the database has all five');
	assertFreshKeys(keys, 5);
	watch.assertClean();
}

/* The answer to a click is lost after the server counted it: the page
 * sends the same request again, with the same key, and the server
 * counts it once. */
async function lostAnswer(session) {
	const { page, watch } = await session.open();
	const keys = recordWriteKeys(page);
	const before = await apiCounter();
	let first = null;
	await page.route('**/write', async (route) => {
		if (first !== null)
			return route.continue();
		const answer = await route.fetch();   /* reaches the server */
		first = { status: answer.status(), body: await answer.json() };
		return route.abort('connectionreset'); /* the page never sees it */
	});
	const endTolerance = watch.tolerate(/net::ERR_CONNECTION_RESET/);
	const button = page.getByRole('button', { name: 'Increment' });
	const [retry] = await Promise.all([
		page.waitForResponse((r) => isWrite(r) && first !== null),
		button.click(),
	]);
	endTolerance();
	assert.equal(first.status, 200, 'the first attempt was counted');
	assert.equal(keys.length, 2, 'the page tried twice');
	assert.equal(keys[0], keys[1], 'with the same key');
	assert.match(keys[0], UUID);
	assert.equal(retry.status(), 200, 'the retry answers 200');
	assert.equal(retry.headers()['idempotent-replayed'], 'true',
		'the server says the retry is a replay');
	assert.equal((await retry.json()).counter, first.body.counter,
		'the replay answers the same value');
	await waitForCounter(page, first.body.counter);
	assert.equal(await apiCounter(), before + 1, 'counted once, not twice');
	assert.equal(await page.locator('#notice').isVisible(), false,
		'a recovered click needs no message');
	watch.assertClean();
}

/* With the database stopped the page says so in plain words, keeps its
 * clock, tells a click did not count; it recovers by itself when the
 * database is back, and the next click counts. */
async function databaseOutage(session) {
	const { page, watch } = await session.open({
		viewport: { width: 375, height: 812 },
	});
	const notice = page.locator('#notice');
	const clock = page.locator('#server-time');
	const button = page.getByRole('button', { name: 'Increment' });
	const noticeSays = (pattern) => waitUntil(`the notice to match ${pattern}`,
		async () => (await notice.isVisible()) &&
			pattern.test(await notice.textContent()));
	const before = await pageCounter(page);
	/* The browser logs each 503 answer as a failed resource. */
	const endTolerance = watch.tolerate(/status of 503/);
	let down = false;
	try {
		down = true;
		await shell('TALLY_DB_STOP');
		await noticeSays(/^The database is unavailable; retrying…$/);

		const stoppedAt = await clock.getAttribute('datetime');
		await waitUntil('the clock to move without the database', async () =>
			(await clock.getAttribute('datetime')) !== stoppedAt, 5000);

		const answers = [];
		page.on('response', (r) => isWrite(r) && answers.push(r.status()));
		await button.click();
		await noticeSays(/that click was not counted/);
		assert.deepEqual(answers, [503, 503], 'tried twice, 503 both times');
		assert.doesNotMatch(await notice.textContent(), /[{}"]|error/i,
			'a human message, not JSON');
		assert.equal(await pageCounter(page), before, 'the counter stays');
		await screenshot(page, 'database-down-375.png');

		await shell('TALLY_DB_START');
		down = false;
		await waitUntil('the page to recover by itself', async () =>
			!/unavailable|not counted/.test(await notice.textContent()), 30000);
	} finally {
		if (down)
			await shell('TALLY_DB_START');
		endTolerance();
	}
	const value = await writeBy(page, () => button.click());
	assert.equal(value, before + 1, 'the next click counts');
	await waitForCounter(page, value);
	assert.equal(await apiCounter(), value, 'the database has it');
	watch.assertClean();
}

/* Screenshots at a phone's and a desktop's width, light and dark; the
 * page fits the phone without sideways scrolling; without JavaScript it
 * says that it needs it. */
async function screenshots(session) {
	const looks = [
		{ name: 'page-375.png', width: 375, height: 812, colorScheme: 'light' },
		{ name: 'page-1280.png', width: 1280, height: 800, colorScheme: 'light' },
		{ name: 'page-375-dark.png', width: 375, height: 812, colorScheme: 'dark' },
	];
	const live = await session.open();
	for (const { name, width, height, colorScheme } of looks) {
		await live.page.setViewportSize({ width, height });
		await live.page.emulateMedia({ colorScheme });
		const overflow = await live.page.evaluate(() =>
			document.documentElement.scrollWidth - window.innerWidth);
		assert.ok(overflow <= 0, `no sideways scrolling at ${name}`);
		assert.ok(await live.page.getByRole('button', { name: 'Increment' }).isVisible());
		await screenshot(live.page, name);
	}
	live.watch.assertClean();

	const { page, watch } = await session.open({ javaScriptEnabled: false });
	/* (getByText skips <noscript>, so the paragraph is found by place.) */
	const noscript = page.locator('noscript p');
	assert.ok(await noscript.isVisible(), 'without JavaScript a notice shows');
	assert.match(await noscript.textContent(), /This page needs JavaScript/);
	await screenshot(page, 'page-no-javascript.png');
	watch.assertClean();
}

/* How the counter lies: its text, its value, how many line boxes it
 * makes, and whether it overflows its own box or the card's content. */
function counterLayout(page) {
	return page.locator('#counter').evaluate(async (el) => {
		/* the bump after a change scales it for a moment */
		await Promise.all(el.getAnimations().map((a) => a.finished));
		const range = document.createRange();
		range.selectNodeContents(el);
		const lines = new Set(Array.from(range.getClientRects(),
			(r) => Math.round(r.top))).size;
		const card = el.closest('.card');
		const style = getComputedStyle(card);
		const box = el.getBoundingClientRect();
		const text = range.getBoundingClientRect();
		const cardRight = card.getBoundingClientRect().right -
			parseFloat(style.paddingRight) - parseFloat(style.borderRightWidth);
		return {
			text: el.textContent,
			value: el.dataset.value,
			lines,
			height: box.height,
			fontSize: parseFloat(getComputedStyle(el).fontSize),
			overflows: el.scrollWidth > el.clientWidth + 1 ||
				text.right > cardRight + 1 || box.right > cardRight + 1,
		};
	});
}

function assertOneLine(layout, what) {
	assert.equal(layout.lines, 1, `${what}: one line (${layout.text})`);
	assert.ok(layout.height < 1.5 * layout.fontSize,
		`${what}: the box is one line high (${layout.height} px at ${layout.fontSize} px)`);
	assert.ok(!layout.overflows, `${what}: stays in its card (${layout.text})`);
}

const BIG = '9007199254740993';	/* 2^53 + 1: no double holds it */
const GROUPED = (digits) => digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/* The counter keeps its number whole: one line, inside its card, at a
 * phone's and a desktop's width, for every length up to 2^53's 16
 * digits (shown through the page's own /write and /read handling of
 * answers of each length), and exact beyond 2^53: the database's
 * counter set to 2^53 + 1 shows every digit, and a click shows 2^53 + 2.
 * Leaves the counter there: the last scenario. */
async function bigNumber(session) {
	const { page, watch } = await session.open({ locale: 'en-US' });
	const button = page.getByRole('button', { name: 'Increment' });
	let fake = null;
	const answer = (route) => route.fulfill({
		status: 200, contentType: 'application/json',
		headers: { 'Cache-Control': 'no-store' },
		body: `{"counter":${fake}}`,
	});
	await page.route('**/read', answer);
	await page.route('**/write', answer);
	for (const width of [375, 1280]) {
		await page.setViewportSize({ width, height: 800 });
		for (let n = 1; n <= 16; n++) {
			fake = '9'.repeat(n);
			await button.click();
			await waitUntil(`the page to show ${fake}`, async () =>
				(await page.locator('#counter').getAttribute('data-value')) === fake);
			const layout = await counterLayout(page);
			assert.equal(layout.text, GROUPED(fake), 'grouped by thousands');
			assertOneLine(layout, `${n} digits at ${width} px`);
		}
	}
	await page.unrouteAll();

	await shell('TALLY_DB_SET_BIG');
	assert.equal(await (await fetch(`${BASE}/read`)).text(),
		`{"counter":${BIG}}`, 'GET /read answers 2^53 + 1 exactly');
	await waitUntil(`the page to read ${BIG}`, async () =>
		(await page.locator('#counter').getAttribute('data-value')) === BIG);
	for (const width of [375, 1280]) {
		await page.setViewportSize({ width, height: 800 });
		const layout = await counterLayout(page);
		assert.equal(layout.text, GROUPED(BIG), `every digit of ${BIG} at ${width} px`);
		assertOneLine(layout, `${BIG} at ${width} px`);
		await screenshot(page, `page-${width}-big.png`);
	}
	const next = (BigInt(BIG) + 1n).toString();
	const [written] = await Promise.all([page.waitForResponse(isWrite), button.click()]);
	assert.equal(await written.text(), `{"counter":${next}}`, 'POST /write answers 2^53 + 2');
	await waitUntil(`the page to show ${next}`, async () =>
		(await page.locator('#counter').textContent()) === GROUPED(next));
	assertOneLine(await counterLayout(page), `${next} after a click`);
	watch.assertClean();
}

/* A page of another origin uses the API from the browser: it reads, and
 * writes when its origin is listed in TALLY_CORS_WRITE_ORIGINS (the
 * browser preflights the keyed JSON POST); an unlisted origin reads too
 * but cannot write: the preflighted POST is refused by the browser, and
 * the "simple" POST that is not preflighted, which does reach the
 * server, is refused there and not counted. */
async function crossOrigin(session) {
	const allowed = requireEnv('TALLY_ORIGIN_ALLOWED');
	const other = requireEnv('TALLY_ORIGIN_OTHER');
	const visit = async (origin) => {
		const context = await session.browser.newContext();
		session.contexts.push(context);
		const page = await context.newPage();
		page.setDefaultTimeout(STEP_TIMEOUT_MS);
		assert.equal((await page.goto(`${origin}/`)).status(), 200, `${origin} answers`);
		assert.equal(await page.evaluate(() => location.origin), origin);
		return page;
	};
	/* runs in the page: what a script of that origin gets */
	const read = (page) => page.evaluate(async (base) => {
		const r = await fetch(`${base}/read`, { cache: 'no-store' });
		return { status: r.status, counter: (await r.json()).counter };
	}, BASE);
	const write = (page, key, mode = 'cors') => page.evaluate(async ([base, key, mode]) => {
		const headers = key ? { 'Idempotency-Key': key, 'Content-Type': 'application/json' } : {};
		try {
			const r = await fetch(`${base}/write`, { method: 'POST', headers, mode, body: key ? '{}' : '' });
			if (r.type === 'opaque')
				return { opaque: true };
			return { status: r.status, counter: (await r.json()).counter,
				replayed: r.headers.get('Idempotent-Replayed') };
		} catch (e) {
			return { refused: `${e.name}: ${e.message}` };
		}
	}, [BASE, key, mode]);

	let before = await apiCounter();
	const listed = await visit(allowed);
	assert.deepEqual(await read(listed), { status: 200, counter: before }, 'the listed origin reads');
	const key = `cross-origin-${Date.now()}`;
	const first = await write(listed, key);
	assert.deepEqual(first, { status: 200, counter: before + 1, replayed: null },
		'the listed origin writes (preflighted)');
	const again = await write(listed, key);
	assert.deepEqual(again, { status: 200, counter: before + 1, replayed: 'true' },
		'it reads Idempotent-Replayed of the replay');
	const simple = await write(listed, null);
	assert.equal(simple.counter, before + 2, 'a simple POST of the listed origin counts');
	/* a no-cors POST reaches the server (its answer stays hidden: the
	 * API's Cross-Origin-Resource-Policy is same-origin) */
	await write(listed, null, 'no-cors');
	assert.equal(await apiCounter(), before + 3, 'the database has the three writes');

	before = await apiCounter();
	const unlisted = await visit(other);
	assert.deepEqual(await read(unlisted), { status: 200, counter: before },
		'an unlisted origin reads');
	const preflighted = await write(unlisted, `cross-origin-other-${Date.now()}`);
	assert.match(preflighted.refused || '', /^TypeError/, 'the browser refuses the preflighted POST');
	const plain = await write(unlisted, null);
	assert.match(plain.refused || '', /^TypeError/, 'the browser hides the simple POST\'s answer');
	const blind = await write(unlisted, null, 'no-cors');
	assert.ok(blind.opaque || /^TypeError/.test(blind.refused || ''),
		'a no-cors POST gets nothing to read');
	assert.equal(await apiCounter(), before, 'nothing the unlisted origin sent counted');
}

/* Badges on another origin's page, as a README shows them: <img> of
 * /badge.svg and /badge/NAME.svg decode and show the width the SVG
 * declares, a counter that does not exist too ("not found": 404, still
 * an image); opened by itself a badge is the SVG with its texts. The
 * widths computed from the text (src/badge.c) match the font's: each
 * text measured here in DejaVu Sans 11px is within a pixel of the
 * badge's textLength. A screenshot of the badges: badge.png. */
async function badges(session) {
	const origin = requireEnv('TALLY_ORIGIN_OTHER');
	const name = `e2e.example/visits-${Date.now()}`;
	for (let i = 0; i < 3; i++) {
		const r = await fetch(`${BASE}/write/${name}`, { method: 'POST', body: '' });
		assert.equal(r.status, 200, 'the named counter counts');
	}
	const wanted = [
		{ id: 'default', src: `${BASE}/badge.svg`, status: 200,
			texts: ['counter', String(await apiCounter())] },
		{ id: 'named', src: `${BASE}/badge/${name}.svg?label=visits&color=green`,
			status: 200, texts: ['visits', '3'] },
		{ id: 'quoted', src: `${BASE}/badge.svg?label=${encodeURIComponent('<b>"x" & \'y\'</b>')}&color=e05d44`,
			status: 200, texts: ['<b>"x" & \'y\'</b>', String(await apiCounter())] },
		{ id: 'unknown', src: `${BASE}/badge/e2e.example/none.svg?label=visits`,
			status: 404, texts: ['visits', 'not found'] },
	];
	const declared = {};
	for (const w of wanted) {
		const r = await fetch(w.src, { cache: 'no-store' });
		assert.equal(r.status, w.status, `${w.id}: ${w.src} answers ${w.status}`);
		assert.equal(r.headers.get('content-type'), 'image/svg+xml; charset=utf-8');
		const svg = await r.text();
		declared[w.id] = {
			width: Number(/^<svg [^>]*width="(\d+)"/.exec(svg)[1]),
			lengths: [...svg.matchAll(/<text [^>]*y="14"[^>]*textLength="(\d+)"/g)].map((m) => Number(m[1])),
		};
	}

	const context = await session.browser.newContext({ deviceScaleFactor: 2 });
	session.contexts.push(context);
	const page = await context.newPage();
	page.setDefaultTimeout(STEP_TIMEOUT_MS);
	assert.equal((await page.goto(`${origin}/`)).status(), 200, `${origin} answers`);
	await page.evaluate((list) => {
		const box = document.createElement('div');
		box.id = 'badges';
		box.style.cssText = 'display: inline-block; padding: 4px 12px; font: 14px sans-serif; background: #fff';
		box.append(...list.map((w) => {
			const p = document.createElement('p');
			const img = document.createElement('img');
			img.id = w.id;
			img.alt = w.texts.join(': ');
			img.src = w.src;
			img.style.verticalAlign = 'middle';
			p.append(img, ` ${w.id}`);
			return p;
		}));
		document.body.replaceChildren(box);
	}, wanted);
	for (const w of wanted) {
		const shown = await waitUntil(`the ${w.id} badge to load`, () =>
			page.locator(`#${w.id}`).evaluate((img) => img.complete &&
				{ natural: img.naturalWidth, height: img.naturalHeight }));
		assert.equal(shown.natural, declared[w.id].width,
			`${w.id}: the image decoded, as wide as the SVG says`);
		assert.equal(shown.height, 20, `${w.id}: 20 px high`);
	}
	/* the text widths of the table against the font's own */
	const measured = await page.evaluate((list) => {
		const ctx = document.createElement('canvas').getContext('2d');
		ctx.font = '11px "DejaVu Sans"';
		return list.map((w) => w.texts.map((t) => ctx.measureText(t).width));
	}, wanted);
	wanted.forEach((w, i) => {
		w.texts.forEach((t, j) => {
			const length = declared[w.id].lengths[j];
			assert.ok(length >= measured[i][j] && length - measured[i][j] < 1,
				`${w.id}: "${t}" is ${measured[i][j]} px in DejaVu Sans, the badge says ${length}`);
		});
	});
	await page.locator('#badges').screenshot({ path: path.join(requireEnv('TALLY_SCREENSHOT_DIR'), 'badge.png') });
	console.log(`screenshot: ${path.join(process.env.TALLY_SCREENSHOT_DIR, 'badge.png')}`);

	/* a badge opened by itself: the SVG, its texts, nothing run */
	const direct = await context.newPage();
	direct.setDefaultTimeout(STEP_TIMEOUT_MS);
	const answer = await direct.goto(wanted[2].src);
	assert.equal(answer.status(), 200);
	assert.match(answer.headers()['content-security-policy'], /^default-src 'none';/);
	const texts = await direct.evaluate(() =>
		[...document.querySelectorAll('text')].map((t) => t.textContent));
	assert.deepEqual(texts, [wanted[2].texts[0], wanted[2].texts[0],
		wanted[2].texts[1], wanted[2].texts[1]]);
	assert.equal(await direct.evaluate(() => document.querySelectorAll('script, b').length), 0,
		'no element from the label');
}

/* ?counter=NAME: the page shows and counts that named counter, shows its
 * name as text, and leaves the default counter alone; a name outside the
 * rule (here one of markup) is refused in plain words, shown as text,
 * and sends nothing. */
async function namedCounter(session) {
	const name = `e2e.site/visits-${Date.now()}`;
	const readNamed = async () => {
		const response = await fetch(`${BASE}/read/${name}`, { cache: 'no-store' });
		return response.status === 200 ? (await response.json()).counter : response.status;
	};
	const before = await apiCounter();
	assert.equal(await readNamed(), 404, 'the named counter does not exist yet');
	{
		const { page, watch } = await session.open({},
			`/?counter=${encodeURIComponent(name)}`, false);
		/* nobody counted it yet: /read/NAME answers 404, shown as 0 */
		const untolerate = watch.tolerate(/status of 404/);
		await page.locator('#counter[data-state="ok"]').waitFor();
		assert.equal(await pageCounter(page), 0, 'a counter nobody counted shows 0');
		assert.equal(await page.locator('#counter-name').textContent(), name,
			'the page names the counter');
		assert.ok(await page.locator('#counter-name').isVisible());
		const isNamedWrite = (r) => new URL(r.url()).pathname === `/write/${name}` &&
			(r.request ? r.request() : r).method() === 'POST';
		const [answer] = await Promise.all([page.waitForResponse(isNamedWrite),
			page.getByRole('button', { name: 'Increment' }).click()]);
		assert.equal(answer.status(), 200, 'POST /write/NAME answers 200');
		assert.equal((await answer.json()).counter, 1);
		await waitForCounter(page, 1);
		assert.equal(await readNamed(), 1, 'the click counted on the named counter');
		assert.equal(await apiCounter(), before, 'the default counter did not move');
		untolerate();
		watch.take(/status of 404/);
		watch.assertClean();
	}
	{
		const bad = '<img src=x onerror=alert(1)>/"&amp;';
		const { page, watch } = await session.open({},
			`/?counter=${encodeURIComponent(bad)}`, false);
		const shown = page.locator('#counter-name');
		assert.equal(await shown.textContent(), bad, 'the name is shown as text');
		assert.equal(await shown.evaluate((el) => el.childElementCount), 0,
			'the name made no element');
		assert.equal(await page.locator('main img').count(), 0, 'no image was made');
		assert.match(await page.locator('#notice').textContent(),
			/names no valid counter/, 'a plain message says why');
		assert.ok(await page.getByRole('button', { name: 'Increment' }).isDisabled(),
			'nothing to click');
		await sleep(500);
		/* every request the document made, from its start */
		const sent = await page.evaluate(() => performance
			.getEntriesByType('resource').map((e) => new URL(e.name).pathname)
			.filter((p) => /^\/(read|write)/.test(p)));
		assert.deepEqual(sent, [], 'no request for the counter');
		assert.equal(await apiCounter(), before, 'the default counter did not move');
		watch.assertClean();
	}
}

/* Two tabs on two stacks (pods) that share one database, each with
 * polling forbidden (?poll=0, app.js): a click in one shows in the
 * other within a second, so by the other's stream (GET /stream). */
async function liveAcrossStacks(session) {
	const other = requireEnv('TALLY_OTHER_URL');
	const a = await session.open({}, '/?poll=0');
	const b = await session.open({}, `${other}/?poll=0`);
	for (const { page } of [a, b])
		await page.locator('#counter[data-live="stream"]').waitFor();
	const reads = [];
	b.page.on('request', (r) => {
		if (new URL(r.url()).pathname === '/read')
			reads.push(r.url());
	});
	const button = a.page.getByRole('button', { name: 'Increment' });
	for (let i = 0; i < 3; i++) {
		const value = await writeBy(a.page, () => button.click());
		const clicked = Date.now();
		await waitUntil(`the other stack's tab to show ${value}`, async () =>
			(await pageCounter(b.page)) === value, 1000);
		console.log(`  shown on the other stack ${Date.now() - clicked} ms after the answer`);
	}
	/* and back: a click there shows here */
	const back = b.page.getByRole('button', { name: 'Increment' });
	const value = await writeBy(b.page, () => back.click());
	await waitUntil(`this tab to show ${value}`, async () =>
		(await pageCounter(a.page)) === value, 1000);
	assert.deepEqual(reads, [], 'the other tab never polled /read');
	a.watch.assertClean();
	b.watch.assertClean();
}

const SCENARIOS = {
	facts,
	increment,
	'quick-clicks': quickClicks,
	'lost-answer': lostAnswer,
	'database-outage': databaseOutage,
	screenshots,
	'cross-origin': crossOrigin,
	badges,
	'named-counter': namedCounter,
	'live-across-stacks': liveAcrossStacks,
	'big-number': bigNumber,	/* last: it leaves the counter beyond 2^53 */
};

/* Runs one scenario in its own session, within SCENARIO_TIMEOUT_MS;
 * resolves to "ok" or the reason it failed. */
async function runScenario(browser, name) {
	const session = new Session(browser);
	let timer;
	const timeout = new Promise((resolve, reject) => {
		timer = setTimeout(() => reject(new Error(
			`did not finish within ${SCENARIO_TIMEOUT_MS} ms`)), SCENARIO_TIMEOUT_MS);
	});
	try {
		await Promise.race([SCENARIOS[name](session), timeout]);
		return 'ok';
	} catch (e) {
		return `not ok\n${e.stack || e}`;
	} finally {
		clearTimeout(timer);
		await session.close();
	}
}

function report(name, result, ms) {
	const [status, ...reason] = result.split('\n');
	console.log(`${status} ${name} (${ms} ms)`);
	reason.forEach((line) => console.log(`  ${line}`));
	const dir = process.env.TALLY_E2E_RESULTS;
	if (dir) {
		fs.mkdirSync(dir, { recursive: true });
		fs.writeFileSync(path.join(dir, `${name}.result`), `${result}\n`);
	}
}

async function main() {
	const names = process.argv.length > 2 ? process.argv.slice(2) :
		Object.keys(SCENARIOS);
	const unknown = names.filter((name) => !(name in SCENARIOS));
	if (unknown.length > 0) {
		console.error(`unknown scenario ${unknown.join(', ')}; ` +
			`known: ${Object.keys(SCENARIOS).join(' ')}`);
		process.exit(2);
	}
	const browser = await launchBrowser();
	console.log(`chromium ${browser.version()}`);
	let failed = 0;
	try {
		for (const name of names) {
			const started = Date.now();
			const result = await runScenario(browser, name);
			failed += result === 'ok' ? 0 : 1;
			report(name, result, Date.now() - started);
		}
	} finally {
		await browser.close();
	}
	process.exitCode = failed > 0 ? 1 : 0;
}

main().catch((e) => {
	console.error(e.stack || e);
	process.exitCode = 1;
});
