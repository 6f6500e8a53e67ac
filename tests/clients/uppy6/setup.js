// Uppy 6 against assetbox: the plugin talks to S3 itself and asks the app to
// presign each request; the hook POSTs it to /s3/sign with the user's token.
// This is the README's snippet; the browser tests bundle it with the stock
// packages, unmodified.
import Uppy from '@uppy/core'
import AwsS3 from '@uppy/aws-s3'

export function createUppy({ api, token, multipartAbove = 100 * 1024 * 1024 }) {
  return new Uppy().use(AwsS3, {
    shouldUseMultipart: (file) => file.size > multipartAbove,
    async signRequest(request) {
      const response = await fetch(`${api}/s3/sign`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(request),
      })
      const body = await response.json()
      if (!response.ok) throw new Error(body.message)
      return body // { url, key?, headers? }
    },
  })
}
