// The web pages in a real headless Chromium (CTest test-web-pages; see
// docs/web.md). Starts `gpuguard serve` on a temporary gallery, then:
//   /identities: enters the API key, creates "alice" from sample1.jpg (three
//     faces: the page shows the multiple_faces refusal and a button per
//     face), enrolls face 0;
//   /webcam: the fake camera shows a mirrored, rescaled view of sample1's
//     face 0 (a .y4m made by make-y4m); waits until the page names alice;
//   /dashboard: the memory chart has at least 2 samples; switches the device
//     to sim:mem=512M through the form and sees the serving device change;
//   /generate: a 64x48 canvas PNG, esrgan-slim x2, progress to 100% and a
//     128x96 result; a non-image shows 400 bad_image; a 256x192 tile-16 run
//     stopped at its first progress shows "stopped"; the history lists both
//     (newest first, a thumbnail for the finished one), and deleting the
//     finished one removes it; a switch back to cpu.
// No page may throw or log a console error. Screenshots go to
// $GG_BROWSER_OUT/screenshots. The server is killed on every exit path.
//
// Environment: GG_BIN (gpuguard), GG_MAKE_Y4M, GG_BROWSER_OUT (set by
// cmake/browser-tests.cmake); GG_CHROMIUM (default /usr/bin/chromium);
// GG_BROWSER_SKIP=1 skips (exit 77) instead of failing when Chromium or
// playwright-core is missing; GG_BROWSER_TIMEOUT_S scales the waits (slow
// builds such as ASan).
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { spawn, execFileSync } = require("child_process");

const SKIP = 77;
const KEY = "k-browser-0123456789abcdef";
const here = __dirname;
const root = path.resolve(here, "../..");
const bin = process.env.GG_BIN || path.join(root, "build/gpuguard");
const makeY4m = process.env.GG_MAKE_Y4M || path.join(root, "build/make-y4m");
const outDir = process.env.GG_BROWSER_OUT || path.join(root, "build");
const chromiumPath = process.env.GG_CHROMIUM || "/usr/bin/chromium";
const cache = process.env.GPUGUARD_CACHE || path.join(os.homedir(), ".cache/gpuguard");
const sample1 = path.join(cache, "models/face-api-1.7.15/demo/sample1.jpg");
const waitS = Number(process.env.GG_BROWSER_TIMEOUT_S || 20);
const t0 = Date.now();

function log(...a) {
  console.log("[" + ((Date.now() - t0) / 1000).toFixed(1) + "s]", ...a);
}

// Missing tools: a failure that says how to install them, or with
// GG_BROWSER_SKIP=1 a visible skip.
function missing(what) {
  const msg = what + "; install it with `scripts/install.sh --test` (chromium and, through " +
    "scripts/fetch-browser.sh, playwright-core in tests/browser/node_modules)";
  if (process.env.GG_BROWSER_SKIP === "1") {
    console.log("SKIP: " + msg + " (GG_BROWSER_SKIP=1)");
    process.exit(SKIP);
  }
  console.error("FAIL: " + msg + "; or set GG_BROWSER_SKIP=1 to skip this test");
  process.exit(1);
}

function executable(f) {
  try { fs.accessSync(f, fs.constants.X_OK); return fs.statSync(f).isFile(); } catch (_) { return false; }
}
if (Number(process.versions.node.split(".")[0]) < 18)
  missing("Node.js " + process.version + " is too old (18 or later runs playwright-core)");
if (!executable(chromiumPath)) missing("Chromium not found at " + chromiumPath);
let chromium;
try {
  ({ chromium } = require(path.join(here, "node_modules/playwright-core")));
} catch (e) {
  missing("playwright-core not installed in tests/browser/node_modules (" + e.code + ")");
}
if (!fs.existsSync(sample1)) {
  console.log("SKIP: sample photos missing (" + sample1 + "): run scripts/fetch-models.sh");
  process.exit(SKIP);
}
for (const f of [bin, makeY4m]) if (!fs.existsSync(f)) missing("built binary " + f + " not found (build first)");

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gg-web-"));
const shots = path.join(outDir, "screenshots");
fs.mkdirSync(shots, { recursive: true });
for (const f of fs.readdirSync(shots)) if (f.startsWith("failure-")) fs.rmSync(path.join(shots, f));
let server = null, browser = null;

function cleanup() {
  if (server && server.exitCode === null) server.kill("SIGKILL");
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(1));

function check(cond, what) {
  if (!cond) throw new Error(what);
  log("ok: " + what);
}

async function startServer() {
  const portFile = path.join(tmp, "port");
  const args = ["serve", "--port", "0", "--port-file", portFile, "--data-dir", path.join(tmp, "data"),
    "--api-key", KEY, "--device", "cpu", "--fallback", "", "--web-dir", path.join(root, "web"),
    "--log-level", "warn"];
  const logFd = fs.openSync(path.join(tmp, "server.log"), "w");
  server = spawn(bin, args, { stdio: ["ignore", logFd, logFd] });
  server.on("exit", (code, sig) => log("server exited", code, sig || ""));
  for (let i = 0; i < waitS * 10; i++) {
    if (fs.existsSync(portFile) && fs.readFileSync(portFile, "utf8").trim()) break;
    if (server.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const port = fs.existsSync(portFile) ? fs.readFileSync(portFile, "utf8").trim() : "";
  if (!port) throw new Error("the server did not start: " + fs.readFileSync(path.join(tmp, "server.log"), "utf8").slice(-2000));
  const base = "http://127.0.0.1:" + port;
  for (let i = 0; i < waitS * 10; i++) { // models load before /readyz says ready
    try { if ((await fetch(base + "/readyz")).ok) return base; } catch (_) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the server never became ready");
}

// Every page: no uncaught exception, no console error.
const problems = [];
// The refusals the test provokes: no key, several faces, a name that exists.
const expected = [{ url: "/api/identities", status: "401" }, { url: "/examples", status: "422" },
  { url: "/api/identities", status: "409" }, { url: "/api/generate", status: "400" }];

function watch(page) {
  const name = () => new URL(page.url()).pathname;
  page.on("pageerror", (e) => problems.push(name() + ": page error: " + e.message));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    // Chromium logs every 4xx answer; the one refusal the test provokes is expected.
    const where = (m.location() || {}).url || "";
    if (expected.some((e) => where.includes(e.url) && m.text().includes(e.status))) return;
    problems.push(name() + ": console error: " + m.text() + " (" + where + ")");
  });
  page.on("requestfailed", (r) => {
    // Leaving a page aborts what it had in flight: /webcam's frame, the
    // dashboard's and /generate's polls (GETs). A failure the server causes
    // reads otherwise (ERR_EMPTY_RESPONSE, ERR_CONNECTION_RESET, ...).
    const aborted = /ERR_ABORTED/.test((r.failure() || {}).errorText);
    if (aborted && (r.method() === "GET" || r.url().includes("/api/recognize"))) return;
    problems.push(name() + ": request failed: " + r.url() + " " + (r.failure() || {}).errorText);
  });
  return page;
}

async function main() {
  const base = await startServer();
  log("server at " + base);
  // The camera: sample1's face 0 (x 1482..1648, y 257..423) with its
  // surroundings, mirrored and scaled to 640x480: another view than the
  // photo it was enrolled from.
  const y4m = path.join(tmp, "camera.y4m");
  execFileSync(makeY4m, [sample1, y4m, "--crop", "1340,170,1790,507", "--size", "640x480", "--mirror", "--frames", "2"]);
  browser = await chromium.launch({
    executablePath: chromiumPath, headless: true,
    args: ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
      "--use-file-for-fake-video-capture=" + y4m, "--no-sandbox"],
  });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await ctx.grantPermissions(["camera"], { origin: base });
  const T = waitS * 1000;

  // ---- /identities: the key, then alice from a photo with three faces -----
  // One tab, moving between the pages by their links, as a user does: the
  // key lives in the tab's sessionStorage.
  const ids = watch(await ctx.newPage());
  const dialogs = [];
  ids.on("dialog", (d) => { dialogs.push(d.message()); d.accept(); });
  await ids.goto(base + "/identities");
  await ids.fill("#new-name", "alice");
  await ids.click("#create");
  await ids.locator("#create-msg", { hasText: "401 unauthorized" }).waitFor({ timeout: T });
  check(/needs the API key/.test(await ids.textContent("#create-msg")), "without the key the page shows the server's 401 message");
  await ids.fill("#apikey", KEY);
  await ids.fill("#new-name", "alice");
  await ids.setInputFiles("#new-photos", sample1);
  await ids.click("#create");
  const refusal = ids.locator("#create-results li").first();
  await refusal.locator("text=multiple_faces").waitFor({ timeout: T });
  check(/3 faces/.test(await refusal.textContent()), "a photo with three faces is refused, saying so");
  check(await refusal.locator("button").count() === 3, "the refusal offers one button per face");
  await refusal.locator("button", { hasText: "Enroll face 0" }).click();
  await refusal.locator(".status", { hasText: "enrolled as example" }).waitFor({ timeout: T });
  check(true, "face 0 of sample1 is enrolled for alice");
  const aliceRow = ids.locator("#people tr", { has: ids.locator("td.name", { hasText: /^alice$/ }) });
  await aliceRow.locator("td:nth-child(2)", { hasText: /^1$/ }).waitFor({ timeout: T });
  check(true, "the list shows alice with 1 example");
  // A name is text, never markup.
  await ids.fill("#new-name", "<b id=x>eve</b>");
  await ids.click("#create");
  await ids.locator("#people td.name", { hasText: "<b id=x>eve</b>" }).waitFor({ timeout: T });
  check(await ids.locator("#people b#x").count() === 0, "a name with markup is shown as text");
  await ids.screenshot({ path: path.join(shots, "identities.png"), fullPage: true });

  // ---- /webcam: the fake camera shows alice -------------------------------
  const cam = ids;
  await cam.click('header nav a[href="/webcam"]');
  await cam.waitForURL(base + "/webcam");
  check(await cam.inputValue("#apikey") === KEY, "the key typed on /identities is still there on /webcam");
  await cam.locator("#faces li .name", { hasText: /^alice$/ }).waitFor({ timeout: T });
  check(true, "the webcam page names alice");
  check(/^cpu/.test(await cam.textContent("#device")), "the webcam page shows the serving device (cpu)");
  check((await cam.textContent("#error")) === "", "no API error on the webcam page");
  const boxes = await cam.evaluate(() => {
    const c = document.getElementById("overlay");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) n++;
    return { w: c.width, h: c.height, painted: n };
  });
  check(boxes.w === 640 && boxes.h === 480 && boxes.painted > 500, "face boxes are drawn over the video (" + boxes.painted + " px)");
  await cam.screenshot({ path: path.join(shots, "webcam.png") });
  // Freeze the last frame, then enroll from it and mark it a wrong match.
  await cam.click("#stop");
  await cam.waitForTimeout(800);
  await cam.fill("#enroll-name", "alice");
  await cam.click("#enroll");
  await cam.locator("#enroll-msg", { hasText: /enrolled example \d+ for alice$/ }).waitFor({ timeout: T });
  check(true, "\"Enroll this face\" adds the camera's face to the existing alice");
  await cam.locator("#faces button", { hasText: "Wrong match" }).first().click();
  await cam.locator("#faces-msg", { hasText: "stored as a face that is not alice" }).waitFor({ timeout: T });
  check(true, "\"Wrong match\" stores the frame's face as a negative of alice");

  // ---- /dashboard: memory chart, then a device switch ---------------------
  const dash = cam;
  await dash.click('header nav a[href="/dashboard"]');
  await dash.waitForURL(base + "/dashboard");
  await dash.waitForFunction(() => Number(document.getElementById("chart").dataset.samples) >= 2, null, { timeout: T });
  const pts = await dash.evaluate(() => {
    const l = document.querySelector("#chart polyline");
    return l ? l.getAttribute("points").trim().split(/\s+/).length : 0;
  });
  check(pts >= 2, "the memory chart has a line of " + pts + " points");
  // The history behind it: a sample a second since the start, oldest first,
  // and since_ms gives only the newer ones.
  const hist = await (await fetch(base + "/api/history")).json();
  const ts = hist.samples.map((x) => x.t_ms);
  check(ts.length >= 3 && ts.every((t, i) => i === 0 || t > ts[i - 1]) &&
        hist.samples.every((x) => x.rss_bytes > 0 && x.devices.length === 1 && x.devices[0].spec === "cpu"),
        "GET /api/history has " + ts.length + " samples, oldest first, with RSS and the cpu pool");
  const newer = await (await fetch(base + "/api/history?since_ms=" + ts[ts.length - 2])).json();
  check(newer.samples.length >= 1 && newer.samples[0].t_ms === ts[ts.length - 1], "?since_ms= returns only newer samples");
  await dash.locator("#serving", { hasText: /^cpu$/ }).waitFor({ timeout: T });
  await dash.selectOption("#switch-spec", "other…");
  await dash.fill("#switch-other", "sim:mem=512M");
  await dash.click("#switch");
  await dash.locator("#switch-msg", { hasText: "now on sim:mem=512M" }).waitFor({ timeout: T * 2 });
  await dash.locator("#serving", { hasText: /^sim:mem=512M$/ }).waitFor({ timeout: T });
  check(true, "the dashboard switched the serving device to sim:mem=512M");
  await dash.waitForTimeout(1200); // a history sample on the new device
  await dash.screenshot({ path: path.join(shots, "dashboard.png"), fullPage: true });

  // ---- / links to the pages -----------------------------------------------
  const home = dash;
  await home.click('header nav a[href="/"]');
  await home.waitForURL(base + "/");
  for (const p of ["/webcam", "/identities", "/dashboard"])
    check(await home.locator('a[href="' + p + '"]').count() === 1, "/ links to " + p);
  await home.locator("#device", { hasText: "sim" }).waitFor({ timeout: T });
  check(true, "the dashboard at / shows the switched device");

  // ---- /identities again: events, rename onto a name (merge), delete -------
  const ids2 = home;
  await ids2.click('nav a[href="/identities"]');
  await ids2.waitForURL(base + "/identities");
  await ids2.locator("#events td", { hasText: /^alice$/ }).first().waitFor({ timeout: T });
  check(await ids2.locator("#events button", { hasText: "Mark wrong match" }).count() >= 1,
        "recent events list alice's recognitions, with a wrong-match action");
  const eveId = await ids2.locator("#people tr", { has: ids2.locator("td.name", { hasText: "eve" }) }).getAttribute("data-id");
  const eveRow = ids2.locator('#people tr[data-id="' + eveId + '"]');
  await eveRow.locator("button", { hasText: "Rename" }).click();
  await eveRow.locator("input").fill("alice");
  await eveRow.locator("button", { hasText: "Save" }).click();
  await ids2.locator("#people-msg", { hasText: "merged" }).waitFor({ timeout: T });
  check(dialogs.some((m) => /merges/.test(m)), "renaming onto an existing name asks first and says it merged");
  await ids2.waitForFunction(() => document.querySelectorAll("#people tr").length === 1, null, { timeout: T });
  check((await ids2.textContent("#people td.name")) === "alice", "after the merge one person is left: alice");
  await ids2.locator("#people button", { hasText: "Open" }).click();
  await ids2.locator("#examples li button", { hasText: "Remove" }).first().waitFor({ timeout: T });
  await ids2.locator("#negatives li button", { hasText: "Remove" }).first().waitFor({ timeout: T });
  check(await ids2.locator("#examples li").count() === 2 && await ids2.locator("#negatives li").count() === 1 &&
        (await ids2.textContent("#detail-name")) === "alice",
        "alice's 2 examples and 1 negative are listed, each with a remove button");
  // Each example shows its stored face crop (a 160x160 JPEG from the server).
  await ids2.waitForFunction(() => [...document.querySelectorAll("#examples img.crop")]
    .filter((i) => i.complete && i.naturalWidth === 160).length === 2, null, { timeout: T });
  check(true, "both examples show their face crop (160x160 JPEG)");
  await ids2.locator("#negatives li button", { hasText: "Remove" }).click();
  await ids2.locator("#detail-msg", { hasText: /^removed negative #\d+$/ }).waitFor({ timeout: T });
  await ids2.locator("#negatives li", { hasText: "none" }).waitFor({ timeout: T });
  check(true, "a negative is removed");
  await ids2.locator("#people button", { hasText: "Delete" }).click();
  await ids2.locator("#page-info", { hasText: "nobody enrolled yet" }).waitFor({ timeout: T });
  check(dialogs.some((m) => /^Delete "alice"/.test(m)), "delete asks for confirmation and removes the person");
  await ids2.screenshot({ path: path.join(shots, "identities-after.png"), fullPage: true });

  // ---- /generate: upscale a canvas-made PNG, then stop a long one ---------
  const gen = ids2;
  await gen.click('header nav a[href="/generate"]');
  await gen.waitForURL(base + "/generate");
  await gen.locator("#model option", { hasText: "esrgan-slim" }).waitFor({ state: "attached", timeout: T });
  check(await gen.locator("#scale option").count() >= 2, "the model and scale menus are filled from /api/config");
  await gen.locator("#serving", { hasText: /^sim:mem=512M$/ }).waitFor({ timeout: T });
  check(await gen.locator("#switch-spec option").count() >= 1, "/generate shows the serving device and a switch menu");
  // A PNG drawn in the page (a gradient with a few shapes), w x h.
  const png = async (w, h) => Buffer.from(await gen.evaluate(([w, h]) => {
    const c = document.createElement("canvas");
    c.width = w; c.height = h;
    const g = c.getContext("2d");
    const gr = g.createLinearGradient(0, 0, w, h);
    gr.addColorStop(0, "#204080"); gr.addColorStop(1, "#e0c040");
    g.fillStyle = gr; g.fillRect(0, 0, w, h);
    g.fillStyle = "#fff"; g.fillRect(w / 4, h / 4, w / 3, h / 3);
    g.strokeStyle = "#000"; g.lineWidth = 2; g.beginPath(); g.arc(w * 0.7, h * 0.6, h / 5, 0, 7); g.stroke();
    return c.toDataURL("image/png").split(",")[1];
  }, [w, h]), "base64");
  await gen.setInputFiles("#file", { name: "small.png", mimeType: "image/png", buffer: await png(64, 48) });
  await gen.locator("#before-cap", { hasText: "input 64x48" }).waitFor({ timeout: T });
  await gen.selectOption("#model", "esrgan-slim");
  await gen.selectOption("#scale", "2");
  await gen.fill("#tile", "32");
  await gen.click("#generate");
  await gen.locator("#status", { hasText: /^done$/ }).waitFor({ timeout: T * 3 });
  const bar = await gen.evaluate(() => ({ v: document.getElementById("progress").value,
    steps: document.getElementById("steps").textContent, pct: document.getElementById("percent").textContent }));
  check(bar.v === 100 && bar.pct === "100%" && /^(\d+) \/ \1 tiles$/.test(bar.steps),
        "the progress bar reached 100% (" + bar.steps + ", " + bar.pct + ")");
  await gen.waitForFunction(() => { const i = document.getElementById("after");
    return i.complete && i.naturalWidth === 128 && i.naturalHeight === 96; }, null, { timeout: T });
  check(true, "the result image is 128x96, twice the 64x48 input");
  const dl = await gen.getAttribute("#download", "href");
  check(!(await gen.locator("#download").isHidden()) && /^\/api\/generate\/[^/]+\/image/.test(dl),
        "a download link points at the PNG (" + dl + ")");
  const dlr = await fetch(base + dl);
  check(dlr.ok && dlr.headers.get("content-type") === "image/png", "the download link serves image/png");
  check((await gen.textContent("#error")) === "", "no error shown after a finished generation");
  // The history lists it, newest first, with its thumbnail.
  const firstId = dl.split("/")[3];
  await gen.locator('#history li[data-id="' + firstId + '"] img').waitFor({ timeout: T });
  await gen.waitForFunction((id) => { const i = document.querySelector('#history li[data-id="' + id + '"] img');
    return i && i.complete && i.naturalWidth === 128; }, firstId, { timeout: T });
  check(await gen.locator("#history li").first().getAttribute("data-id") === firstId,
        "the history lists the finished generation first, with its 128x96 thumbnail (" + firstId + ")");
  await gen.screenshot({ path: path.join(shots, "generate.png"), fullPage: true });
  // Errors are shown: a file that is not an image gets the server's 400 message.
  await gen.setInputFiles("#file", { name: "notes.png", mimeType: "image/png", buffer: Buffer.from("not an image") });
  await gen.click("#generate");
  await gen.locator("#error", { hasText: /^400 bad_image: / }).waitFor({ timeout: T });
  check(/^error$/.test(await gen.textContent("#status")) && await gen.isEnabled("#generate"),
        "an undecodable image shows the server's error (" + await gen.textContent("#error") + ")");
  // A long one (256x192, tile 16: hundreds of steps), stopped at its first progress.
  await gen.setInputFiles("#file", { name: "large.png", mimeType: "image/png", buffer: await png(256, 192) });
  await gen.locator("#before-cap", { hasText: "input 256x192" }).waitFor({ timeout: T });
  await gen.fill("#tile", "16");
  await gen.click("#generate");
  await gen.waitForFunction(() => document.getElementById("progress").value > 0, null, { timeout: T * 2 });
  await gen.click("#stop");
  await gen.locator("#status", { hasText: /^stopped$/ }).waitFor({ timeout: T * 2 });
  const stopMsg = await gen.textContent("#error");
  check(/409 stopped: the generation was canceled after \d+ of \d+ steps/.test(stopMsg),
        "Stop ends the generation: the page says stopped (" + stopMsg + ")");
  check(await gen.locator("#download").isHidden() && !(await gen.getAttribute("#after", "src")),
        "a stopped generation shows no result and no download link");
  check(await gen.isEnabled("#generate") && !(await gen.isEnabled("#stop")), "Generate is enabled again, Stop disabled");
  await gen.locator("#history li").first().locator(".pill", { hasText: /^stopped$/ }).waitFor({ timeout: T });
  check(await gen.locator('#history li[data-id="' + firstId + '"]').count() === 1,
        "the stopped generation heads the history, the finished one is still listed");
  await gen.screenshot({ path: path.join(shots, "generate-stopped.png"), fullPage: true });
  // Delete the finished one: asked first, gone from the list and the server.
  await gen.locator('#history li[data-id="' + firstId + '"] button', { hasText: "Delete" }).click();
  await gen.locator('#history li[data-id="' + firstId + '"]').waitFor({ state: "detached", timeout: T });
  check(dialogs.some((m) => m.startsWith("Delete generation " + firstId)), "delete asks for confirmation");
  const gone = await fetch(base + "/api/generate/" + firstId);
  check(gone.status === 404 && /^deleted /.test(await gen.textContent("#history-msg")),
        "a deleted generation leaves the history and the server answers 404 for it");
  // The device switch on this page: back to cpu.
  await gen.selectOption("#switch-spec", "cpu");
  await gen.click("#switch");
  await gen.locator("#switch-msg", { hasText: "now on cpu" }).waitFor({ timeout: T * 2 });
  await gen.locator("#serving", { hasText: /^cpu$/ }).waitFor({ timeout: T });
  check(true, "/generate switched the serving device back to cpu");

  check(problems.length === 0, "no page error or console error" + (problems.length ? ":\n  " + problems.join("\n  ") : ""));
  await browser.close();
  browser = null;
  // A clean stop: the sampler thread joins, and a sanitizer build reports
  // what it found through the exit status.
  const code = await new Promise((res) => {
    const timer = setTimeout(() => res("did not stop within " + waitS + " s"), waitS * 1000);
    server.once("exit", (c, sig) => { clearTimeout(timer); res(sig ? "killed by " + sig : c); });
    server.kill("SIGTERM");
  });
  check(code === 0, "the server stops cleanly on SIGTERM (exit " + code + ")");
}

main().then(() => {
  log("PASS");
  process.exit(0);
}, async (e) => {
  console.error("FAIL: " + e.message);
  if (problems.length) console.error("page problems:\n  " + problems.join("\n  "));
  const logf = path.join(tmp, "server.log");
  if (fs.existsSync(logf)) console.error("server log (tail):\n" + fs.readFileSync(logf, "utf8").slice(-3000));
  if (browser) {
    for (const c of browser.contexts()) for (const [i, p] of c.pages().entries())
      await p.screenshot({ path: path.join(shots, "failure-" + i + ".png") }).catch(() => {});
    await browser.close().catch(() => {});
  }
  process.exit(1);
});
