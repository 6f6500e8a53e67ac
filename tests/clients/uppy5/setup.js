// Uppy 5 against assetbox: the /s3 routes are a Companion-style endpoint,
// authenticated with the user's bearer token. This is the README's snippet;
// the browser tests bundle it with the stock packages, unmodified.
import Uppy from '@uppy/core'
import AwsS3 from '@uppy/aws-s3'

export function createUppy({ api, token, multipartAbove = 100 * 1024 * 1024 }) {
  return new Uppy().use(AwsS3, {
    endpoint: api, // Uppy calls `${api}/s3/params`, `${api}/s3/multipart`, …
    headers: { authorization: `Bearer ${token}` },
    shouldUseMultipart: (file) => file.size > multipartAbove,
  })
}
