// The console's load figures, for `assetbox-bench console`: Debian's
// headless Chromium opens the console served by the local stack in fresh
// browser contexts (empty HTTP cache) and reports, per run, the bytes that
// crossed the wire and the time from navigation start until the page can
// be used: signed out, the login form shown; signed in (the session in
// localStorage), the user's project list rendered. Prints JSON.
import { chromium } from '../browser/node_modules/playwright-core/index.mjs'

const job = JSON.parse(process.env.ASSETBOX_TIMING_JOB)
const browser = await chromium.launch({
  executablePath: job.chromium,
  chromiumSandbox: false,
  args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
})

// Bytes of the console's own files (same origin): the API's answers are data, not page weight.
const pageBytes = () => {
  const own = (e) => new URL(e.name).origin === location.origin
  const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]
  return entries.filter(own).reduce((sum, e) => sum + e.transferSize, 0)
}

async function measure(storageState, ready) {
  const context = await browser.newContext(storageState ? { storageState } : {})
  const page = await context.newPage()
  await page.goto(job.console)
  await page.waitForFunction(ready, job, { polling: 'raf', timeout: 30_000 })
  const figures = await page.evaluate(
    ([pageBytesSource]) => ({ ms: performance.now(), bytes: eval(pageBytesSource)() }),
    [`(${pageBytes})`],
  )
  const state = await context.storageState()
  await context.close()
  return { ...figures, state }
}

const signedOut = []
const signedIn = []
let session = null
try {
  for (let run = 0; run < job.runs; run++) {
    const out = await measure(null, () => {
      const form = document.querySelector('#auth-view')
      return form && !form.hidden
    })
    signedOut.push({ ms: out.ms, bytes: out.bytes })
  }
  // One login through the form, for the signed-in runs' localStorage.
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(job.console)
  await page.getByLabel('Email').fill(job.email)
  await page.getByLabel('Password').fill(job.password)
  await page.getByRole('button', { name: 'Log in' }).click()
  await page.getByRole('heading', { name: 'Projects' }).waitFor()
  session = await context.storageState()
  await context.close()
  for (let run = 0; run < job.runs; run++) {
    const out = await measure(session, (job) =>
      [...document.querySelectorAll('#project-list li')].some((li) => li.textContent.includes(job.project)))
    signedIn.push({ ms: out.ms, bytes: out.bytes })
  }
} finally {
  await browser.close()
}
process.stdout.write(JSON.stringify({ signedOut, signedIn }))
