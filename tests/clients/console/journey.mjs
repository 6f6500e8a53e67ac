// The web console's browser journey, for tests/console.rs: Debian's
// headless Chromium (playwright-core from tests/clients/browser, no browser
// download) drives the real console and share pages served by the local
// stack, finding everything by role and accessible name (getByRole,
// getByLabel), so the names are checked too. It waits for states, never
// for time. Prints {result, log, step} as JSON; the Rust test checks
// the result against the API. A screenshot of every step lands in the
// job's artifacts folder (and `failure.png` where it stopped).
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { chromium } from '../browser/node_modules/playwright-core/index.mjs'

const job = JSON.parse(process.env.ASSETBOX_CONSOLE_JOB)
const log = []
const result = { steps: [] }
let step = 'start'
// Presigned URLs and share links carry secrets: log where a request went, not its query.
const where = (url) => url.split('?')[0].replace(/\/shared\/[^/]+/, '/shared/<token>')
const TIMEOUT = 60_000
// The whole journey's bound: past it the report so far is printed (with
// the step it stopped at) and the browser goes with the process.
setTimeout(() => {
  log.push(`driver: the journey took over 4 minutes (at step ${step})`)
  process.stdout.write(JSON.stringify({ result, log: log.join('\n'), step }))
  process.exit(1)
}, 240_000).unref()

const browser = await chromium.launch({
  executablePath: job.chromium,
  chromiumSandbox: false,
  // This machine's network is closed: without these Chromium keeps trying
  // to reach Google's services.
  args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
})

function watch(page, name) {
  page.setDefaultTimeout(TIMEOUT)
  page.on('console', (m) => log.push(`${name} console.${m.type()}: ${m.text()}`))
  page.on('pageerror', (e) => log.push(`${name} pageerror: ${e.stack || e}`))
  page.on('requestfailed', (r) => log.push(`${name} request failed: ${r.method()} ${where(r.url())}: ${r.failure()?.errorText}`))
  page.on('response', (r) => {
    if (r.status() >= 400) log.push(`${name} response ${r.status()}: ${r.request().method()} ${where(r.url())}`)
  })
}

let shot = 0
async function snap(page, name) {
  shot += 1
  const file = path.join(job.artifacts, `${String(shot).padStart(2, '0')}-${name}.png`)
  await page.screenshot({ path: file, fullPage: true })
  result.steps.push(name)
}

/** Polls `check` (in node) until it returns a truthy value. */
async function until(what, check, timeout = TIMEOUT) {
  const started = Date.now()
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() - started > timeout) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true })
// The console copies share links with navigator.clipboard.
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: job.console })
const page = await context.newPage()
watch(page, 'console')
let visitor = null

const boxLinks = () => page.locator('#box-list li[data-id] .box-link')
const boxOrder = async () => (await boxLinks().allTextContents()).map((t) => t.replace(/^\d+\.\s*/, ''))
const card = (name) => page.getByRole('article', { name, exact: true })

try {
  step = 'register'
  await page.goto(`${job.console}/`)
  await page.getByLabel('Email').fill(job.email)
  await page.getByLabel('Password').fill(job.password)
  await page.getByRole('button', { name: 'Create account' }).click()
  await page.getByRole('heading', { name: 'Projects' }).waitFor()
  // Set once: still there at the end means the page never reloaded.
  await page.evaluate(() => {
    window.journeyMarker = 'no reload'
  })
  await snap(page, 'registered')

  step = 'project'
  await page.getByLabel('New project').fill(job.project)
  await page.getByRole('button', { name: 'Create project' }).click()
  await page.getByRole('heading', { name: job.project, level: 2 }).waitFor()
  result.projectId = decodeURIComponent(new URL(page.url()).hash.split('/')[2])

  step = 'boxes'
  for (const name of ['Shot 1', 'Shot 2', 'Shot 3']) {
    await page.getByLabel('New box').fill(name)
    await page.getByRole('button', { name: 'Add box' }).click()
    await page.getByRole('link', { name: new RegExp(`${name}$`) }).waitFor()
  }
  await snap(page, 'three-boxes')

  step = 'reorder by drag'
  // HTML5 drag and drop: Shot 3 dropped on Shot 1 takes its place.
  let saved = page.waitForResponse((r) => r.url().includes('/boxes/reorder') && r.request().method() === 'POST')
  await page.locator('#box-list li[data-id]').nth(2).dragTo(page.locator('#box-list li[data-id]').nth(0))
  let answer = await saved
  result.dragStatus = answer.status()
  result.afterDrag = await boxOrder()
  await snap(page, 'reordered-by-drag')

  step = 'reorder by keyboard'
  // Alt+↑ on Shot 2's link moves it up one; focus stays on it.
  saved = page.waitForResponse((r) => r.url().includes('/boxes/reorder') && r.request().method() === 'POST')
  await page.getByRole('link', { name: /Shot 2$/ }).focus()
  await page.keyboard.press('Alt+ArrowUp')
  answer = await saved
  result.keyboardStatus = answer.status()
  result.afterKeyboard = await boxOrder()
  result.focusAfterMove = await page.evaluate(() => document.activeElement?.textContent?.trim())
  await snap(page, 'reordered-by-keyboard')

  step = 'escape closes a dialog'
  await page.getByRole('button', { name: 'Delete project' }).click()
  const dialog = page.getByRole('dialog', { name: 'Are you sure?' })
  await dialog.waitFor()
  await snap(page, 'confirm-dialog')
  await page.keyboard.press('Escape')
  await dialog.waitFor({ state: 'hidden' })
  result.projectKeptAfterEscape = await page.getByRole('heading', { name: job.project, level: 2 }).isVisible()

  step = 'upload'
  await page.getByRole('link', { name: /Shot 1$/ }).click()
  await page.getByRole('heading', { name: 'Shot 1', level: 3 }).waitFor()
  await page.getByLabel('Choose files').setInputFiles([job.image, job.video])
  const videoName = path.basename(job.video)
  const imageName = path.basename(job.image)
  const videoBar = page.getByRole('progressbar', { name: new RegExp(`${videoName.replace('.', '\\.')} to Shot 1`) })
  await videoBar.waitFor()
  result.progressMax = Number(await videoBar.getAttribute('max'))
  await snap(page, 'uploading')
  await page.getByRole('progressbar', { name: `Uploaded ${videoName} to Shot 1` }).waitFor()
  await page.getByRole('progressbar', { name: `Uploaded ${imageName} to Shot 1` }).waitFor()
  result.progressDone = await videoBar.evaluate((bar) => bar.value === bar.max)
  await snap(page, 'uploaded')

  step = 'completed without reload'
  // Live (WebSocket) or polling: the badges change on their own.
  await card(imageName).getByText('Completed').waitFor()
  await card(videoName).getByText('Completed').waitFor()
  result.liveMode = await page.locator('#live-state').textContent()
  result.reloaded = (await page.evaluate(() => window.journeyMarker)) !== 'no reload'
  const thumb = card(imageName).getByRole('img', { name: imageName })
  await until('the thumbnail to load', () => thumb.evaluate((img) => img.complete && img.naturalWidth > 0))
  result.thumbnailSrc = where(await thumb.getAttribute('src'))
  result.imageFacts = await card(imageName).locator('.meta').textContent()
  const video = card(videoName).locator('video')
  result.videoSrc = where(await video.getAttribute('src'))
  result.videoFacts = await card(videoName).locator('.meta').textContent()
  result.videoControls = await video.evaluate((v) => v.controls)
  await snap(page, 'completed')

  step = 'favourite and headliner'
  const favourite = card(imageName).getByRole('button', { name: 'Favourite' })
  await favourite.click()
  await until('the favourite to show', async () => (await favourite.getAttribute('aria-pressed')) === 'true')
  const headliner = card(imageName).getByRole('button', { name: 'Headliner' })
  await headliner.click()
  await until('the headliner to show', async () => (await headliner.getAttribute('aria-pressed')) === 'true')
  await card(imageName).locator('.badges').getByText('Headliner').waitFor()
  // The full-size picture opens in a dialog; Escape closes it.
  await card(imageName).getByRole('button', { name: `View larger: ${imageName}` }).click()
  await page.getByRole('dialog', { name: imageName }).waitFor()
  await snap(page, 'image-viewer')
  await page.keyboard.press('Escape')
  await page.getByRole('dialog', { name: imageName }).waitFor({ state: 'hidden' })
  await snap(page, 'favourite-and-headliner')

  step = 'generate'
  await page.getByLabel('Model', { exact: true }).selectOption(job.imageModel)
  await page.getByLabel('Prompt', { exact: true }).fill(job.prompt)
  await page.getByLabel('Width (16–2048)').fill('320')
  await page.getByLabel('Height (16–2048)').fill('180')
  await page.getByRole('button', { name: 'Generate', exact: true }).click()
  await card(job.prompt).waitFor()
  await snap(page, 'generating')
  await card(job.prompt).getByText('Completed').waitFor()
  const generated = card(job.prompt).getByRole('img', { name: job.prompt })
  await until('the generated thumbnail to load', () => generated.evaluate((img) => img.complete && img.naturalWidth > 0))
  result.generatedFacts = await card(job.prompt).locator('.meta').textContent()
  await snap(page, 'generated')

  step = 'image to video'
  await page.getByLabel('Model', { exact: true }).selectOption(job.videoModel)
  // The picker lists the box's completed images by name.
  await page.getByLabel('Source image').selectOption({ label: imageName })
  await page.getByLabel('Prompt', { exact: true }).fill(job.videoPrompt)
  await page.getByRole('button', { name: 'Generate', exact: true }).click()
  await card(job.videoPrompt).getByText('Completed').waitFor()
  await snap(page, 'image-to-video')

  step = 'a failed generation'
  await page.getByLabel('Model', { exact: true }).selectOption(job.imageModel)
  await page.getByLabel('Prompt', { exact: true }).fill(job.failPrompt)
  await page.getByRole('button', { name: 'Generate', exact: true }).click()
  await card(job.failPrompt).locator('.badge-failed').waitFor()
  result.failedText = await card(job.failPrompt).locator('.error-text').textContent()
  await snap(page, 'generation-failed')

  step = 'filters and search'
  const names = async () => (await page.locator('#asset-grid .card-title').allTextContents()).sort()
  const filters = page.getByRole('search', { name: 'Filter assets' })
  await filters.getByLabel('Type').selectOption('VIDEO')
  await until('only videos', async () => (await page.locator('#asset-grid article').count()) === 2)
  result.videosOnly = await names()
  await filters.getByLabel('Type').selectOption('')
  await filters.getByLabel('Status').selectOption('FAILED')
  await until('only the failed one', async () => (await page.locator('#asset-grid article').count()) === 1)
  result.failedOnly = await names()
  await filters.getByLabel('Status').selectOption('')
  await filters.getByLabel('Search name or prompt').fill('FOX')
  await until('the search', async () => (await page.locator('#asset-grid article').count()) === 1)
  result.searchFox = await names()
  await snap(page, 'filtered')
  await filters.getByLabel('Search name or prompt').fill('')
  await until('all again', async () => (await page.locator('#asset-grid article').count()) === 5)

  step = 'delete an asset'
  await card(job.failPrompt).getByRole('button', { name: 'Delete' }).click()
  const sure = page.getByRole('dialog', { name: 'Are you sure?' })
  await sure.getByRole('button', { name: 'Delete asset' }).click()
  await card(job.failPrompt).waitFor({ state: 'detached' })
  await snap(page, 'asset-deleted')

  step = 'share link'
  await page.getByLabel('Expires in (days)').fill('3')
  await page.getByRole('button', { name: 'Create share link' }).click()
  const linkField = page.getByLabel('New link (shown once)')
  await linkField.waitFor()
  result.shareUrl = await linkField.inputValue()
  await page.getByRole('button', { name: 'Copy link' }).click()
  // (Other announcements may replace "copied" at once: the clipboard says it.)
  result.clipboard = await until('the link in the clipboard', () =>
    page.evaluate((url) => navigator.clipboard.readText().then((text) => text === url && text), result.shareUrl))
  await snap(page, 'share-link')

  step = 'share page'
  // Someone else: a fresh context, nothing stored.
  const guest = await browser.newContext({ viewport: { width: 390, height: 844 } })
  visitor = await guest.newPage()
  watch(visitor, 'share')
  await visitor.goto(result.shareUrl)
  await visitor.getByRole('heading', { name: job.project, level: 1 }).waitFor()
  result.sharedShots = await visitor.getByRole('heading', { level: 2 }).allTextContents()
  const sharedShot = visitor.getByRole('region', { name: '3. Shot 1' })
  const sharedHeadliner = sharedShot.getByRole('img', { name: 'Headliner of Shot 1' })
  await until('the shared headliner to load', () => sharedHeadliner.evaluate((img) => img.complete && img.naturalWidth > 0))
  result.sharePhoneOverflow = await visitor.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  await snap(visitor, 'share-page')
  await sharedShot.getByLabel('Your name').fill(job.commentAuthor)
  await sharedShot.getByLabel('Your comment').fill(job.commentText)
  await sharedShot.getByRole('button', { name: 'Send comment' }).click()
  await sharedShot.getByText('Sent. Thank you!').waitFor()
  await snap(visitor, 'comment-sent')

  step = 'comment in the console'
  await page.getByRole('button', { name: 'Refresh comments' }).click()
  await page.getByRole('heading', { name: 'Comments (1 unread)' }).waitFor()
  const comment = page.getByRole('article', { name: `Comment by ${job.commentAuthor}` })
  await comment.getByText(job.commentText).waitFor()
  result.commentUnread = await comment.getByText('Unread').isVisible()
  await snap(page, 'comment-unread')
  await comment.getByRole('button', { name: 'Mark read' }).click()
  await page.getByRole('heading', { name: 'Comments', exact: true }).waitFor()
  await comment.getByRole('button', { name: 'Mark unread' }).waitFor()
  await snap(page, 'comment-read')

  step = 'export'
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Export storyboard (.docx)' }).click(),
  ])
  result.exportName = download.suggestedFilename()
  result.exportPath = path.join(job.artifacts, 'storyboard.docx')
  await download.saveAs(result.exportPath)
  result.exportStartsWithPK = (await readFile(result.exportPath)).subarray(0, 2).toString('latin1') === 'PK'
  await snap(page, 'exported')

  step = 'revoke'
  await page.getByRole('button', { name: /^Revoke the link created/ }).click()
  await page.getByRole('dialog', { name: 'Are you sure?' }).getByRole('button', { name: 'Revoke link' }).click()
  await page.getByText('No share links.').waitFor()
  await visitor.reload()
  await visitor.getByRole('heading', { name: 'This share link is not available' }).waitFor()
  result.revokedPage = await visitor.locator('main').innerText()
  await snap(visitor, 'revoked-link')
  await visitor.goto(`${job.console}/shared/not-a-token`)
  await visitor.getByRole('heading', { name: 'This share link is not available' }).waitFor()
  result.unknownPage = await visitor.locator('main').innerText()

  step = 'drop files'
  // Files dropped on the drop zone: an image, and a text file the API
  // refuses, whose reason the console shows.
  await page.getByRole('link', { name: /Shot 3$/ }).click()
  await page.getByRole('heading', { name: 'Shot 3', level: 3 }).waitFor()
  const png = (await readFile(job.image)).toString('base64')
  const dropped = await page.evaluateHandle((png) => {
    const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0))
    const transfer = new DataTransfer()
    transfer.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }))
    transfer.items.add(new File(['just words'], 'notes.txt', { type: 'text/plain' }))
    return transfer
  }, png)
  await page.locator('#dropzone').dispatchEvent('dragover', { dataTransfer: dropped })
  await page.locator('#dropzone').dispatchEvent('drop', { dataTransfer: dropped })
  await page.getByRole('progressbar', { name: 'Failed notes.txt to Shot 3' }).waitFor()
  result.refusedReason = await page.locator('#upload-list li', { hasText: 'notes.txt' }).locator('.error-text').textContent()
  await card('dropped.png').getByText('Completed').waitFor()
  await snap(page, 'dropped')

  step = 'resume after reload'
  // A second video into Shot 2 whose part 2 cannot reach the storage: the
  // upload fails with parts 1 and 3 stored. After a reload the same file
  // is picked again and only part 2 is sent.
  await page.getByRole('link', { name: /Shot 2$/ }).click()
  await page.getByRole('heading', { name: 'Shot 2', level: 3 }).waitFor()
  const part = (url) => Number(new URL(url).searchParams.get('partNumber'))
  const blockPart2 = (route) => (part(route.request().url()) === 2 ? route.abort('connectionrefused') : route.continue())
  const isPart = (url) => url.searchParams.has('partNumber') && url.pathname.endsWith('/original.mp4')
  await page.route(isPart, blockPart2)
  const resumeName = path.basename(job.resumeVideo)
  await page.getByLabel('Choose files').setInputFiles(job.resumeVideo)
  await page.getByRole('progressbar', { name: `Failed ${resumeName} to Shot 2` }).waitFor()
  await snap(page, 'upload-interrupted')
  await page.unroute(isPart, blockPart2)
  await page.reload()
  await page.getByRole('heading', { name: 'Shot 2', level: 3 }).waitFor()
  result.unfinishedShown = await page.getByText(`${resumeName} (`).textContent()
  await snap(page, 'unfinished-after-reload')
  const sent = []
  page.on('request', (r) => {
    if (r.method() === 'PUT' && r.url().includes('partNumber=')) sent.push(part(r.url()))
  })
  await page.getByLabel('Choose files').setInputFiles(job.resumeVideo)
  await page.getByRole('progressbar', { name: `Uploaded ${resumeName} to Shot 2` }).waitFor()
  result.resumeMessage = await page.locator('#upload-list li', { hasText: resumeName }).locator('.hint').textContent()
  result.partsSentOnResume = sent
  await card(resumeName).getByText('Completed').waitFor()
  await snap(page, 'resumed')

  step = 'token refresh'
  // Another tab of the same user writes the session: first an access token
  // the API refuses (the console refreshes once on the 401 and retries),
  // then one about to expire (refreshed at once, the socket reconnects).
  const refreshes = []
  page.on('request', (r) => {
    if (r.url().endsWith('/api/auth/refresh')) refreshes.push(r.url())
  })
  const otherTab = await context.newPage()
  await otherTab.goto(`${job.console}/config.json`)
  await otherTab.evaluate(() => {
    const session = JSON.parse(localStorage.getItem('assetbox.session'))
    localStorage.setItem('assetbox.session', JSON.stringify({ ...session, accessToken: 'not.a.token', expiresAt: Date.now() + 3_600_000 }))
  })
  const reloaded = page.waitForResponse((r) => r.url().includes('/comments/') && r.status() === 200)
  await page.getByRole('button', { name: 'Refresh comments' }).click()
  await reloaded
  result.refreshedOn401 = refreshes.length
  await otherTab.evaluate(() => {
    const session = JSON.parse(localStorage.getItem('assetbox.session'))
    localStorage.setItem('assetbox.session', JSON.stringify({ ...session, expiresAt: Date.now() + 30_000 }))
  })
  await until('a refresh before expiry', () => refreshes.length > result.refreshedOn401)
  await until('the socket back with the new token', async () => (await page.locator('#live-state').textContent()) === 'Live')
  result.refreshedBeforeExpiry = refreshes.length - result.refreshedOn401
  result.stillSignedIn = await page.getByRole('button', { name: 'Log out' }).isVisible()
  await otherTab.close()

  step = 'phone width'
  await page.setViewportSize({ width: 390, height: 844 })
  await page.getByRole('link', { name: /Shot 1$/ }).click()
  await card(imageName).waitFor()
  result.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  // What sticks out, if anything (for the failure message).
  result.phoneWide = await page.evaluate(() =>
    [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5)
      .slice(0, 5)
      .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`))
  await snap(page, 'phone')

  result.session = await page.evaluate(() => JSON.parse(localStorage.getItem('assetbox.session')))
  step = 'done'
} catch (error) {
  log.push(`driver (${step}): ${error.stack || error}`)
  for (const [p, name] of [[page, 'failure'], [visitor, 'failure-share']]) {
    if (p) await p.screenshot({ path: path.join(job.artifacts, `${name}.png`), fullPage: true }).catch(() => {})
  }
} finally {
  await browser.close()
}
process.stdout.write(JSON.stringify({ result, log: log.join('\n'), step }))
