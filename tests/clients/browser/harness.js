// Runs in the page: fetches the test's files from this page's own origin,
// hands them to the bundled Uppy (window.assetboxUppy.createUppy) and
// reports what Uppy said.
window.uploadWithUppy = async ({ api, token, multipartAbove, files }) => {
  const uppy = window.assetboxUppy.createUppy({ api, token, multipartAbove })
  const errors = []
  uppy.on('upload-error', (file, error, response) => {
    errors.push({ name: file?.name, error: String(error?.stack || error), response: response?.body ?? null })
  })
  for (const file of files) {
    const bytes = await (await fetch(file.path)).blob()
    uppy.addFile({ name: file.name, type: file.type, data: new Blob([bytes], { type: file.type }) })
  }
  const result = await uppy.upload()
  return {
    successful: (result?.successful ?? []).map((f) => ({
      name: f.name,
      size: f.size,
      key: f.response?.body?.key ?? f.s3Multipart?.key ?? null,
      location: f.response?.body?.location ?? f.response?.uploadURL ?? null,
    })),
    failed: (result?.failed ?? []).map((f) => ({ name: f.name, error: String(f.error) })),
    errors,
  }
}

// A plain authenticated call, to see whether the browser lets the page
// read the API's answer (CORS).
window.callApi = async ({ api, token, path }) => {
  try {
    const response = await fetch(`${api}${path}`, { headers: { authorization: `Bearer ${token}` } })
    return { ok: true, status: response.status }
  } catch (error) {
    return { ok: false, error: String(error) }
  }
}

// Runs the README's live-status lines as they are written, with their
// three constants given, and collects what they print until a line
// matches `until` (or `waitMs` pass).
window.runLiveSnippet = async ({ source, liveUrl, token, project, until, waitMs }) => {
  const printed = []
  const original = console.log
  let done
  const finished = new Promise((resolve) => { done = resolve })
  console.log = (...args) => {
    const line = args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')
    printed.push(line)
    original(...args)
    if (new RegExp(until).test(line)) done()
  }
  try {
    new Function('LIVE_URL', 'ACCESS_TOKEN', 'PROJECT_ID', source)(liveUrl, token, project)
    await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, waitMs))])
  } finally {
    console.log = original
  }
  return printed
}
