// Answers the playground's CDN requests from npm: the page names each file
// as https://cdn.jsdelivr.net/npm/<name>@<version>/<path>, pinned with an
// integrity hash; the test machines cannot reach the CDN, but the npm
// registry serves the very package that jsDelivr mirrors. Each package is
// fetched once (npm pack, no dependencies) into .cache/cdn.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, mkdirSync } from 'node:fs'
import { join, extname } from 'node:path'
import { webRoot } from './harness.mjs'

const CDN = /^https:\/\/cdn\.jsdelivr\.net\/npm\/((?:@[^/]+\/)?[^/@]+)@([^/]+)\/(.+)$/
const cacheRoot = join(webRoot, '.cache', 'cdn')

const types = { '.js': 'application/javascript', '.css': 'text/css', '.map': 'application/json', '.json': 'application/json' }

function packageDir(name, version) {
  const dir = join(cacheRoot, `${name.replace('/', '__')}@${version}`)
  if (existsSync(join(dir, 'package', 'package.json'))) return join(dir, 'package')
  mkdirSync(dir, { recursive: true })
  execFileSync('npm', ['pack', `${name}@${version}`, '--pack-destination', dir, '--silent'], { stdio: ['ignore', 'ignore', 'inherit'] })
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))
  execFileSync('tar', ['-xzf', join(dir, tarball), '-C', dir])
  const pkg = JSON.parse(readFileSync(join(dir, 'package', 'package.json'), 'utf8'))
  if (pkg.name !== name || pkg.version !== version) {
    throw new Error(`npm gave ${pkg.name}@${pkg.version} for ${name}@${version}`)
  }
  return join(dir, 'package')
}

// routeCDN makes the browser context answer jsDelivr npm URLs from npm, and
// records which it answered.
export async function routeCDN(context) {
  const served = []
  await context.route(/^https:\/\/cdn\.jsdelivr\.net\//, async (route) => {
    const url = route.request().url()
    const m = CDN.exec(url)
    if (!m) return route.abort()
    const [, name, version, path] = m
    const file = join(packageDir(name, version), path)
    if (!existsSync(file)) return route.fulfill({ status: 404, body: 'not in the npm package' })
    served.push(`${name}@${version}/${path}`)
    await route.fulfill({
      status: 200,
      contentType: types[extname(file)] ?? 'application/octet-stream',
      headers: { 'Access-Control-Allow-Origin': '*' },
      body: readFileSync(file),
    })
  })
  return served
}
