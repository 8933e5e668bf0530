// Test harness for the browser tests: the real Go server (built from this
// repository), the Vite dev server for the frontend, and Debian's Chromium
// driven by playwright-core. Everything listens on loopback, on free ports.
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, existsSync, mkdirSync } from 'node:fs'
import { createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createServer as createViteServer } from 'vite'
import { chromium } from 'playwright-core'

const here = dirname(fileURLToPath(import.meta.url))
export const webRoot = resolve(here, '..')
export const repoRoot = resolve(webRoot, '..', '..')

let binary

// buildServer builds the Go server once per test process.
export function buildServer() {
  if (binary) return binary
  const dir = mkdtempSync(join(tmpdir(), 'gqlauth-bin-'))
  binary = join(dir, 'gqlauth')
  execFileSync('go', ['build', '-o', binary, '.'], { cwd: repoRoot, stdio: 'inherit' })
  return binary
}

export function freePort() {
  return new Promise((res, rej) => {
    const srv = createNetServer()
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => res(port))
    })
    srv.on('error', rej)
  })
}

// startAPI runs the server with a fresh DATA_DIR and the given environment,
// and resolves when it listens. The API is reached as http://localhost:PORT.
export async function startAPI(env = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'gqlauth-data-'))
  const port = await freePort()
  const child = spawn(buildServer(), [], {
    cwd: dataDir,
    env: {
      PATH: process.env.PATH,
      HOME: dataDir,
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: join(dataDir, 'data'),
      BCRYPT_COST: '4',
      RATE_LIMIT_IP_PER_MINUTE: '0',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let log = ''
  await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`the server did not start:\n${log}`)), 30_000)
    child.stderr.on('data', (chunk) => {
      log += chunk
      if (log.includes('msg=listening')) {
        clearTimeout(timer)
        res()
      }
    })
    child.on('exit', (code) => rej(new Error(`the server exited (${code}):\n${log}`)))
  })
  return {
    url: `http://localhost:${port}`,
    log: () => log,
    async stop() {
      child.kill('SIGTERM')
      await new Promise((res) => (child.exitCode !== null ? res() : child.on('exit', res)))
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

// startFrontend serves the example with Vite on a free port, against apiURL.
export async function startFrontend(apiURL, port) {
  const server = await createViteServer({
    root: webRoot,
    configFile: join(webRoot, 'vite.config.js'),
    logLevel: 'error',
    server: { host: 'localhost', port, strictPort: true },
    define: { 'import.meta.env.VITE_API_URL': JSON.stringify(`${apiURL}/graphql`) },
  })
  await server.listen()
  return { url: `http://localhost:${port}`, stop: () => server.close() }
}

// startStack runs the API and the frontend, with CLIENT_ORIGIN set to the
// frontend's origin.
export async function startStack(env = {}) {
  const webPort = await freePort()
  const origin = `http://localhost:${webPort}`
  const api = await startAPI({ CLIENT_ORIGIN: origin, ...env })
  const web = await startFrontend(api.url, webPort)
  return {
    api,
    web,
    async stop() {
      await web.stop()
      await api.stop()
    },
  }
}

// launchBrowser starts Debian's Chromium. Background networking is off: the
// test machines reach nothing but loopback.
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}

// recordOperations records the GraphQL operations a page sends, by name
// (urql sends queries as GET, mutations as POST).
export function recordOperations(page) {
  const names = []
  page.on('request', (req) => {
    const url = new URL(req.url())
    if (!url.pathname.endsWith('/graphql')) return
    let query = ''
    if (req.method() === 'POST') query = req.postDataJSON()?.query ?? ''
    else if (req.method() === 'GET') query = url.searchParams.get('query') ?? ''
    else return
    const match = /(query|mutation)\s+(\w+)/.exec(query)
    names.push(match ? match[2] : 'anonymous')
  })
  return names
}

export async function register(page, { name = 'Ann', email, password = 'correct horse battery' }) {
  const form = page.getByTestId('register-form')
  await form.getByLabel('Name').fill(name)
  await form.getByLabel('E-mail').fill(email)
  await form.getByLabel('Password', { exact: true }).fill(password)
  await form.getByLabel('Repeat password').fill(password)
  await form.getByRole('button', { name: 'Register' }).click()
  await page.getByText('Registered. You can log in now.').waitFor()
}

export async function login(page, { email, password = 'correct horse battery' }) {
  const form = page.getByTestId('login-form')
  await form.getByLabel('E-mail').fill(email)
  await form.getByLabel('Password').fill(password)
  await form.getByRole('button', { name: 'Log in' }).click()
  await page.getByTestId('signed-in').waitFor()
}

export function ensureDir(path) {
  if (!existsSync(path)) mkdirSync(path, { recursive: true })
  return path
}
