// The example frontend in a real browser against the real server: the
// cross-origin flow with HttpOnly cookies, silent refresh after expiry (one
// refresh shared by concurrent operations), two tabs refreshing at once,
// and logout.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { ensureDir, launchBrowser, login, recordOperations, register, repoRoot, startStack } from './harness.mjs'

const ACCESS_TTL_SECONDS = 5
let stack
let browser

before(async () => {
  stack = await startStack({ ACCESS_TOKEN_EXPIRES_IN: `${ACCESS_TTL_SECONDS}s` })
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await stack?.stop()
})

const sleep = (ms) => new Promise((res) => setTimeout(res, ms))
const waitForExpiry = () => sleep((ACCESS_TTL_SECONDS + 1.5) * 1000)

async function signedInPage(context, email) {
  const page = await context.newPage()
  await page.goto(stack.web.url)
  await page.getByTestId('signed-out').waitFor()
  await register(page, { email })
  await login(page, { email })
  return page
}

test('register, log in and see me, with the tokens out of reach of scripts', async () => {
  const context = await browser.newContext()
  const page = await signedInPage(context, 'ann@example.com')
  assert.equal(await page.getByTestId('user-email').textContent(), 'ann@example.com')
  assert.equal(await page.getByTestId('user-name').textContent(), 'Ann')
  await page.getByTestId('sessions').getByText('(this device)').waitFor()

  // The page can read logged_in, and nothing else.
  const visible = await page.evaluate(() => document.cookie)
  assert.match(visible, /(^|; )logged_in=true($|;)/)
  assert.doesNotMatch(visible, /access_token|refresh_token/)
  const cookies = await context.cookies(stack.api.url)
  const byName = Object.fromEntries(cookies.map((c) => [c.name, c]))
  for (const name of ['access_token', 'refresh_token']) {
    assert.equal(byName[name]?.httpOnly, true, `${name} must be HttpOnly`)
    assert.equal(byName[name]?.sameSite, 'Lax')
  }
  assert.equal(byName.logged_in?.httpOnly, false)

  const shots = process.env.UPDATE_SCREENSHOT ? ensureDir(join(repoRoot, 'docs')) : tmpdir()
  await page.screenshot({ path: join(shots, 'example-signed-in.png'), fullPage: true })
  await context.close()
})

test('an expired access token is refreshed silently, once for concurrent operations', async () => {
  const context = await browser.newContext()
  const page = await signedInPage(context, 'expiry@example.com')
  await waitForExpiry()
  const ops = recordOperations(page)
  await page.getByTestId('reload').click() // me and sessions at once
  await page.getByText('Welcome, Ann.').waitFor()
  await page.getByTestId('sessions').getByText('(this device)').waitFor()
  assert.equal(ops.filter((n) => n === 'Refresh').length, 1, `operations: ${ops}`)
  assert.ok(ops.filter((n) => n === 'Me').length === 2, `me was not retried once: ${ops}`)
  assert.equal(await page.getByTestId('signed-in').isVisible(), true)
  await context.close()
})

test('on load, logged_in leads to a silent refresh; without it the page does not ask', async () => {
  const context = await browser.newContext()
  const page = await signedInPage(context, 'reload@example.com')
  await waitForExpiry()
  let ops = recordOperations(page)
  await page.reload()
  await page.getByTestId('signed-in').waitFor()
  assert.equal(ops.filter((n) => n === 'Refresh').length, 1, `operations: ${ops}`)

  await page.getByTestId('logout').click()
  await page.getByTestId('signed-out').waitFor()
  assert.doesNotMatch(await page.evaluate(() => document.cookie), /logged_in/)
  const fresh = await context.newPage()
  ops = recordOperations(fresh)
  await fresh.goto(stack.web.url)
  await fresh.getByTestId('signed-out').waitFor()
  assert.deepEqual(ops, [], 'a signed-out page must not call the API on load')
  await context.close()
})

test('two tabs refreshing at the same moment both stay signed in', async () => {
  const context = await browser.newContext()
  const first = await signedInPage(context, 'tabs@example.com')
  const second = await context.newPage()
  await second.goto(stack.web.url)
  await second.getByTestId('signed-in').waitFor()
  await waitForExpiry()
  const opsA = recordOperations(first)
  const opsB = recordOperations(second)
  // "At the same moment" is made certain rather than left to timing: the
  // first Refresh is held until the other tab sends its own, so both spend
  // the same refresh token (otherwise the second tab may start after the
  // first has refreshed, find fresh cookies and need no refresh at all).
  const held = []
  let releaseAll
  const bothSent = new Promise((res) => { releaseAll = res })
  const deadline = setTimeout(() => releaseAll(), 10_000)
  await context.route((url) => url.pathname.endsWith('/graphql'), async (route) => {
    const req = route.request()
    if (req.method() !== 'POST' || !/mutation\s+Refresh\b/.test(req.postDataJSON()?.query ?? '')) return route.continue()
    held.push(req)
    if (held.length >= 2) releaseAll()
    await bothSent
    return route.continue()
  })
  await Promise.all([first.getByTestId('reload').click(), second.getByTestId('reload').click()])
  await Promise.all([first.getByText('Welcome, Ann.').waitFor(), second.getByText('Welcome, Ann.').waitFor()])
  clearTimeout(deadline)
  await context.unrouteAll()
  assert.ok(held.length >= 2, `two refreshes in flight at once: ${opsA} / ${opsB}`)
  assert.ok(opsA.includes('Refresh') && opsB.includes('Refresh'), `each tab refreshed: ${opsA} / ${opsB}`)
  // Both keep working afterwards.
  for (const page of [first, second]) {
    await page.getByTestId('reload').click()
    await page.getByText('Welcome, Ann.').waitFor()
    assert.equal(await page.getByTestId('signed-in').isVisible(), true)
  }
  assert.doesNotMatch(stack.api.log(), /event=refresh_reuse/)
  await context.close()
})

test('a revoked session signs the page out on its next request', async () => {
  const context = await browser.newContext()
  const page = await signedInPage(context, 'revoked@example.com')
  const other = await browser.newContext()
  const otherPage = await other.newPage()
  await otherPage.goto(stack.web.url)
  await login(otherPage, { email: 'revoked@example.com' })
  await otherPage.getByTestId('logout-all').click()
  await otherPage.getByText('You are signed out on every device.').waitFor()
  await page.getByTestId('reload').click()
  await page.getByTestId('signed-out').waitFor()
  await other.close()
  await context.close()
})
