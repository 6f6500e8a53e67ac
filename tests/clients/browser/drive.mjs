// Drives Debian's Chromium (headless, through playwright-core; no browser
// download) for tests/browser.rs: opens the job's page, calls one function
// of the page with the job's argument, and prints {result, log} as JSON.
// The log holds the console, page errors and every failed or 4xx/5xx
// request, so a failing test shows what the browser saw.
import { chromium } from 'playwright-core'

const job = JSON.parse(process.env.ASSETBOX_BROWSER_JOB)
const log = []
// Presigned URLs carry signatures: log where a request went, not its query.
const where = (url) => url.split('?')[0]

const browser = await chromium.launch({
  executablePath: job.chromium,
  chromiumSandbox: false,
  // This machine's network is closed: without these Chromium keeps trying
  // to reach Google's services.
  args: [
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
})
let result = null
try {
  const page = await browser.newPage()
  page.on('console', (m) => log.push(`console.${m.type()}: ${m.text()}`))
  page.on('pageerror', (e) => log.push(`pageerror: ${e.stack || e}`))
  page.on('requestfailed', (r) =>
    log.push(`request failed: ${r.method()} ${where(r.url())}: ${r.failure()?.errorText}`),
  )
  page.on('response', (r) => {
    if (r.status() >= 400) log.push(`response ${r.status()}: ${r.request().method()} ${where(r.url())}`)
  })
  await page.goto(job.page)
  result = await page.evaluate(([name, arg]) => window[name](arg), [job.call, job.arg])
} catch (error) {
  log.push(`driver: ${error.stack || error}`)
} finally {
  await browser.close()
}
process.stdout.write(JSON.stringify({ result, log }))
