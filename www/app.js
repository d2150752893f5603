/* tally - the page's script. Shows the server's time, the visitor's
 * address and proxy chain (GET /time, every second), the counter (GET
 * /stream, live: Server-Sent Events of every change, from any tab or pod;
 * polling GET /read only when no stream can be opened) and counts clicks
 * on Increment (POST /write).
 * With ?counter=NAME in its address it shows and counts the named
 * counter NAME instead (GET /stream/NAME, /read/NAME, POST /write/NAME),
 * once NAME passed the rule of a name; the name is only ever shown as text.
 * Each click carries its own Idempotency-Key and is retried once, with the
 * same key, when the answer is lost, so a retry never counts twice.
 * Problems are told in plain words, and the page recovers by itself. */
'use strict';

(function () {
	const TIME_EVERY_MS = 1000;
	const READ_EVERY_MS = 3000;
	const BACKOFF_MAX_MS = 5000;
	const REQUEST_TIMEOUT_MS = 10000;
	const WRITE_RETRY_DELAY_MS = 300;
	const RECOVERED_NOTICE_MS = 4000;
	const STREAM_RETRY_MAX_MS = 30000;

	const $ = (id) => document.getElementById(id);
	const view = {
		notice: $('notice'),
		counter: $('counter'),
		button: $('increment'),
		clock: $('server-time'),
		date: $('server-date'),
		ip: $('visitor-ip'),
		chain: $('proxy-chain'),
		name: $('counter-name'),
	};

	/* The rule of a counter's name (src/request.h, REQUEST_NAME_RULE;
	 * docs/openapi.yaml, CounterName): a key, or a namespace and a key
	 * separated by one '/', each 1 to 64 of A-Z a-z 0-9 . _ - and
	 * neither '.' nor '..'. */
	const NAME_RULE = /^(?!\.\.?(\/|$))[A-Za-z0-9._-]{1,64}(\/(?!\.\.?$)[A-Za-z0-9._-]{1,64})?$/;

	/* The counter this page shows: the default one (name ''), or the
	 * one ?counter= names; valid false when that name breaks the rule. */
	const counter = (() => {
		const name = new URLSearchParams(location.search).get('counter');
		if (name === null || name === '')
			return { name: '', valid: true, read: '/read', write: '/write',
				stream: '/stream' };
		if (!NAME_RULE.test(name))
			return { name, valid: false };
		return { name, valid: true, read: '/read/' + name,
			write: '/write/' + name, stream: '/stream/' + name };
	})();

	const numberFormat = new Intl.NumberFormat();
	const clockFormat = new Intl.DateTimeFormat(undefined, {
		timeZone: 'UTC', hour: '2-digit', minute: '2-digit',
		second: '2-digit', hourCycle: 'h23',
	});
	const dateFormat = new Intl.DateTimeFormat(undefined, {
		timeZone: 'UTC', weekday: 'long', year: 'numeric',
		month: 'long', day: 'numeric',
	});

	/* --- talking to the API ------------------------------------------ */

	/* Why a request failed: "network" (no answer at all), "database"
	 * (503), "maximum" (409: the counter is at its maximum, for good),
	 * "cap" (409: a named counter that is not there, and no more may be
	 * created), "busy" (another 409: the same key is still being
	 * counted), "absent" (404: a named counter nobody counted yet) or
	 * "http" (any other unexpected answer). */
	class ApiError extends Error {
		constructor(kind, status, retryAfterMs) {
			super(kind + (status ? ' ' + status : ''));
			this.kind = kind;
			this.status = status || 0;
			this.retryAfterMs = retryAfterMs || 0;
		}
	}

	function retryAfterMs(response) {
		const seconds = Number(response.headers.get('Retry-After'));
		return Number.isFinite(seconds) && seconds > 0 ?
			Math.min(seconds, 60) * 1000 : 0;
	}

	/* A 503 is the database's only when the responder says so: lighttpd
	 * answers 503 by itself when a responder is not running. */
	async function errorFor(response) {
		let kind = response.status === 409 ? 'busy' : 'http';
		if (response.status === 409) {
			const body = await response.json().catch(() => ({}));
			if (body && typeof body.error === 'string' &&
			    body.error.startsWith('the counter is at its maximum'))
				kind = 'maximum';
			else if (body && typeof body.error === 'string' &&
			    body.error.includes('named counters exist'))
				kind = 'cap';
		} else if (response.status === 404) {
			kind = 'absent';
		} else if (response.status === 503) {
			const body = await response.json().catch(() => ({}));
			if (body && body.error === 'database unavailable')
				kind = 'database';
		}
		return new ApiError(kind, response.status, retryAfterMs(response));
	}

	/* The counter of a /read or /write answer, {"counter":N}, as a
	 * BigInt read from the text itself: JSON.parse would round a value
	 * beyond 2^53 to the nearest double. null when there is none. */
	function exactCounter(text) {
		const m = /"counter"\s*:\s*(-?[0-9]+)\s*[,}]/.exec(text);
		return m === null ? null : BigInt(m[1]);
	}

	/* Sends one request; resolves to the JSON body of a 200 answer (its
	 * "counter", if any, a BigInt), rejects with an ApiError. A POST
	 * carries an empty body, so the browser sends Content-Length: 0. */
	async function api(method, path, headers) {
		const abort = new AbortController();
		const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
		try {
			let response;
			try {
				response = await fetch(path, {
					method, headers, cache: 'no-store',
					body: method === 'POST' ? '' : undefined,
					signal: abort.signal,
				});
			} catch (e) {
				throw new ApiError('network');
			}
			if (response.status !== 200)
				throw await errorFor(response);
			try {
				const text = await response.text();
				const body = JSON.parse(text);
				if (body !== null && typeof body === 'object' && 'counter' in body)
					body.counter = exactCounter(text);
				return body;
			} catch (e) {
				throw new ApiError(abort.signal.aborted ? 'network' : 'http', 200);
			}
		} finally {
			clearTimeout(timer);
		}
	}

	const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

	/* --- the notice: one calm sentence about what is wrong ------------ */

	/* What is wrong, by the part of the page that found it. */
	const problems = new Map();
	let recoveredTimer = 0;

	const MESSAGES = {
		network: 'Cannot reach the server; retrying…',
		database: 'The database is unavailable; retrying…',
		http: 'The server is having trouble; retrying…',
		busy: 'The server is busy; retrying…',
	};

	/* The live region stays in place, empty when all is well, so that
	 * screen readers hear each new message. */
	function renderNotice(text, tone) {
		if (text === '') {
			view.notice.replaceChildren();
			return;
		}
		const p = view.notice.firstElementChild || document.createElement('p');
		p.className = 'notice';
		p.dataset.tone = tone;
		setText(p, text); /* the same words again are not announced again */
		if (p.parentNode === null)
			view.notice.append(p);
	}

	/* A click that did not count comes first, then the counter, then
	 * the clock. */
	function showProblems() {
		for (const source of ['write', 'read', 'time']) {
			if (problems.has(source)) {
				clearTimeout(recoveredTimer);
				renderNotice(problems.get(source), 'problem');
				return;
			}
		}
	}

	function reportProblem(source, text) {
		problems.set(source, text);
		showProblems();
	}

	/* Forgets what a successful answer disproves; says so briefly when
	 * the page had been showing a problem. */
	function clearProblems(...sources) {
		const removed = sources.map((source) => problems.delete(source));
		if (!removed.includes(true))
			return;
		if (problems.size > 0) {
			showProblems();
			return;
		}
		renderNotice('All good again: connected to the server and the database.', 'ok');
		clearTimeout(recoveredTimer);
		recoveredTimer = setTimeout(() => renderNotice('', 'ok'),
			RECOVERED_NOTICE_MS);
	}

	/* --- what the page shows ------------------------------------------ */

	function setText(node, text) {
		if (node.textContent !== text)
			node.textContent = text;
	}

	/* The size class of a counter text of `length` characters: the
	 * length rounded up to a multiple of 3, from 6 to 27 (style.css has
	 * one rule each). */
	function counterSize(length) {
		return String(Math.min(27, Math.max(6, Math.ceil(length / 3) * 3)));
	}

	/* value is a BigInt: exact at any size. */
	function showCounter(value) {
		const before = view.counter.dataset.value;
		const text = numberFormat.format(value);
		view.counter.dataset.value = String(value);
		view.counter.dataset.state = 'ok';
		view.counter.dataset.size = counterSize(text.length);
		view.counter.removeAttribute('aria-busy');
		setText(view.counter, text);
		if (before !== undefined && before !== String(value)) {
			view.counter.classList.remove('bump');
			void view.counter.offsetWidth; /* restarts the animation */
			view.counter.classList.add('bump');
		}
	}

	function showTime(body) {
		const when = new Date(body.timestamp);
		if (Number.isNaN(when.getTime()))
			return;
		view.clock.dateTime = body.timestamp;
		setText(view.clock, clockFormat.format(when));
		setText(view.date, dateFormat.format(when));
		view.clock.dataset.state = 'ok';
	}

	function showConnection(body) {
		setText(view.ip, body.user_ip || 'unknown');
		const chain = Array.isArray(body.proxy_chain) ? body.proxy_chain : [];
		let text = chain.length === 0 ?
			'None: you reached the server directly.' : chain.join(' → ');
		if (body.proxy_chain_truncated)
			text += ' → …';
		setText(view.chain, text);
		view.chain.classList.toggle('mono', chain.length > 0);
	}

	/* --- polling, with back-off while something is wrong --------------- */

	/* Runs task() now and again: after `every(result)` ms when it
	 * succeeds, after a growing delay (at least Retry-After) when it
	 * fails. Pauses while the page is hidden. */
	function poll(task, every) {
		let failures = 0;
		let timer = 0;
		let running = false;

		async function run() {
			clearTimeout(timer);
			if (running || document.hidden)
				return;
			running = true;
			let delay;
			try {
				delay = every(await task());
				failures = 0;
			} catch (e) {
				failures++;
				delay = Math.max(e.retryAfterMs || 0,
					Math.min(BACKOFF_MAX_MS, 1000 * 2 ** (failures - 1)));
			}
			running = false;
			timer = setTimeout(run, delay);
		}
		document.addEventListener('visibilitychange', run);
		run();
	}

	async function refreshTime() {
		try {
			const body = await api('GET', '/time');
			showTime(body);
			showConnection(body);
			clearProblems('time');
			return body;
		} catch (e) {
			view.clock.dataset.state = 'stale';
			reportProblem('time', e.kind === 'network' ?
				MESSAGES.network : MESSAGES.http);
			throw e;
		}
	}

	/* The next /time just after the server's clock turns the second,
	 * so the clock ticks once a second without skipping. */
	function untilNextSecond(body) {
		const ms = new Date(body.timestamp).getUTCMilliseconds();
		return Number.isNaN(ms) ? TIME_EVERY_MS :
			Math.min(TIME_EVERY_MS, Math.max(200, TIME_EVERY_MS - ms + 50));
	}

	/* Clicks and reads race: an answer to /read sent before a click was
	 * counted may arrive after it. Such an old reading is ignored. */
	const writes = { inFlight: 0, completed: 0, highest: null };

	async function refreshCounter() {
		const completedBefore = writes.completed;
		try {
			let value;
			try {
				const body = await api('GET', counter.read);
				if (body.counter === null)
					throw new ApiError('http', 200);
				value = body.counter;
			} catch (e) {
				/* a named counter nobody counted yet: 0 until the
				 * first click creates it */
				if (e.kind !== 'absent' || counter.name === '')
					throw e.kind === 'absent' ? new ApiError('http', 404) : e;
				value = 0n;
			}
			if (writes.inFlight === 0 && writes.completed === completedBefore)
				showCounter(value);
			clearProblems('read', 'write');
		} catch (e) {
			if (view.counter.dataset.state === 'loading') {
				view.counter.removeAttribute('aria-busy');
				setText(view.counter, '—');
			}
			view.counter.dataset.state = view.counter.dataset.value === undefined ?
				'unknown' : 'stale';
			reportProblem('read', MESSAGES[e.kind]);
			throw e;
		}
	}

	/* --- counting a click ---------------------------------------------- */

	function newKey() {
		if (typeof crypto.randomUUID === 'function')
			return crypto.randomUUID();
		/* Plain http on another host is not a secure context, and has
		 * no randomUUID: build a version 4 UUID by hand. */
		const b = crypto.getRandomValues(new Uint8Array(16));
		b[6] = (b[6] & 0x0f) | 0x40;
		b[8] = (b[8] & 0x3f) | 0x80;
		const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
		return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16),
			hex.slice(16, 20), hex.slice(20)].join('-');
	}

	/* POST /write; when no answer came back, the database was away or
	 * the key is still being counted, once more with the same key (after
	 * Retry-After): the server counts a key once, so this is safe. */
	async function sendWrite(key) {
		const headers = { 'Idempotency-Key': key };
		try {
			return await api('POST', counter.write, headers);
		} catch (e) {
			if (e.kind === 'http' || e.kind === 'maximum' ||
			    e.kind === 'cap' || e.kind === 'absent')
				throw e;
			await sleep(Math.max(WRITE_RETRY_DELAY_MS, e.retryAfterMs));
			return api('POST', counter.write, headers);
		}
	}

	const WRITE_FAILED = {
		network: 'Cannot reach the server, so that click may not have counted. Please try again in a moment.',
		database: 'The database is unavailable, so that click was not counted. Please try again in a moment.',
		busy: 'That click is still being counted; the counter will catch up shortly.',
		maximum: 'The counter is at its largest possible value, so that click was not counted.',
		cap: 'This counter does not exist yet and no more counters may be created, so that click was not counted.',
		absent: 'Something went wrong, so that click was not counted. Please try again.',
		http: 'Something went wrong, so that click was not counted. Please try again.',
	};

	/* Several clicks may be under way at once; each answers its own new
	 * value, in any order: the page shows the highest of them. */
	async function increment() {
		writes.inFlight++;
		try {
			const body = await sendWrite(newKey());
			if (body.counter === null)
				throw new ApiError('http', 200);
			if (writes.highest === null || body.counter > writes.highest)
				writes.highest = body.counter;
			showCounter(writes.highest);
			clearProblems('write', 'read');
		} catch (e) {
			reportProblem('write', WRITE_FAILED[e.kind]);
		} finally {
			writes.inFlight--;
			writes.completed++;
			if (writes.inFlight === 0)
				writes.highest = null;
		}
	}

	/* --- the counter, live --------------------------------------------- */

	/* An EventSource on /stream: an event with the value at once, then
	 * one per change (whoever made it), and a "status" event when the
	 * database goes or comes back. The browser reconnects by itself
	 * when a stream breaks. Only when a stream cannot be opened at all
	 * (no EventSource, or an answer that is not a stream, such as a 503)
	 * does the page poll /read, until a stream opens again. The page's
	 * address can forbid polling, "?poll=0" (the browser test's hook:
	 * a change that shows then came by the stream); the counter's
	 * data-live attribute says how it is fed: "stream" or "poll". */
	function watchCounter() {
		const mayPoll = new URLSearchParams(location.search).get('poll') !== '0';
		let streaming = false;
		let polling = false;
		let failures = 0;

		async function pollWhileClosed() {
			if (polling || !mayPoll)
				return;
			polling = true;
			view.counter.dataset.live = 'poll';
			while (!streaming) {
				let delay = READ_EVERY_MS;
				try {
					if (!document.hidden)
						await refreshCounter();
				} catch (e) {
					delay = Math.max(e.retryAfterMs || 0, READ_EVERY_MS);
				}
				await sleep(delay);
			}
			polling = false;
		}

		function open() {
			if (typeof EventSource !== 'function') {
				pollWhileClosed();
				return;
			}
			const source = new EventSource(counter.stream);
			source.addEventListener('open', () => {
				streaming = true;
				failures = 0;
				view.counter.dataset.live = 'stream';
			});
			source.addEventListener('message', (event) => {
				const value = exactCounter(event.data);
				if (value === null)
					return;
				/* While clicks are under way their answers lead:
				 * an event may still carry an older value. */
				const shown = view.counter.dataset.value;
				if (writes.inFlight === 0 || shown === undefined ||
				    value > BigInt(shown))
					showCounter(value);
				clearProblems('read', 'write');
			});
			source.addEventListener('status', (event) => {
				/* as a /read that answers: the database is back */
				if (/"database"\s*:\s*"ok"/.test(event.data))
					clearProblems('read', 'write');
				else
					reportProblem('read', MESSAGES.database);
			});
			source.addEventListener('error', () => {
				if (source.readyState === EventSource.CONNECTING) {
					/* broken: the browser reconnects by itself */
					reportProblem('read', MESSAGES.network);
					return;
				}
				/* refused (not a stream): poll meanwhile, try again */
				streaming = false;
				source.close();
				failures++;
				pollWhileClosed();
				setTimeout(open, Math.min(STREAM_RETRY_MAX_MS,
					1000 * 2 ** Math.min(failures, 5)));
			});
		}
		open();
	}

	poll(refreshTime, untilNextSecond);
	if (counter.name !== '') {
		/* text only: the name never becomes markup */
		setText(view.name, counter.name);
		view.name.hidden = false;
		document.title = counter.name + ' · tally';
	}
	if (!counter.valid) {
		/* no request for a name the server would refuse */
		view.counter.removeAttribute('aria-busy');
		view.counter.dataset.state = 'unknown';
		setText(view.counter, '—');
		view.button.disabled = true;
		view.name.dataset.state = 'invalid';
		renderNotice('This address names no valid counter: a counter\'s ' +
			'name is a key or a namespace and a key separated by one "/" ' +
			'(visits, example.com/visits), each 1 to 64 of A-Z a-z 0-9 . _ - ' +
			'and neither "." nor "..".', 'problem');
		return;
	}
	view.button.addEventListener('click', increment);
	watchCounter();
})();
