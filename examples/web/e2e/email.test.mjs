// The account e-mails in a real browser, with the e-mails read from a real
// SMTP server the test runs: register with verification required and open
// the link; "forgot password" from a second browser, which signs the first
// one out.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launchBrowser, login, startStack } from './harness.mjs'
import { linkIn, startMailServer } from './mail.mjs'

let mail
let stack
let browser

before(async () => {
  mail = await startMailServer()
  stack = await startStack({ EMAIL_VERIFICATION: 'required', ...mail.env })
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await stack?.stop()
  await mail?.stop()
})

async function registerUnverified(page, email, password = 'correct horse battery') {
  const form = page.getByTestId('register-form')
  await form.getByLabel('Name').fill('Vera')
  await form.getByLabel('E-mail').fill(email)
  await form.getByLabel('Password', { exact: true }).fill(password)
  await form.getByLabel('Repeat password').fill(password)
  await form.getByRole('button', { name: 'Register' }).click()
  await page.getByText('Open the link we sent to your e-mail address').waitFor()
}

async function verifyByLink(page, email) {
  const message = await mail.waitFor(email)
  const link = linkIn(message)
  assert.ok(link.startsWith(`${stack.web.url}/verify-email#token=`), link)
  await page.goto(link)
  assert.equal(new URL(page.url()).hash, '', 'the token stays in the address bar')
  await page.getByRole('button', { name: 'Verify my address' }).click()
  await page.getByText('Your e-mail address is verified').waitFor()
}

test('register with verification required, open the link from the e-mail, and see verified: true', async () => {
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(stack.web.url)
  await registerUnverified(page, 'vera@example.com')

  // Unverified: the password is right, and the answer is FORBIDDEN.
  const form = page.getByTestId('login-form')
  await form.getByLabel('E-mail').fill('vera@example.com')
  await form.getByLabel('Password').fill('correct horse battery')
  await form.getByRole('button', { name: 'Log in' }).click()
  await page.getByTestId('error').getByText('Please verify your account').waitFor()

  const message = await mail.waitFor('vera@example.com')
  assert.match(message.subject, /Verify your e-mail address/)
  assert.ok(message.text.includes('Vera') && message.html.includes('Vera'))
  await verifyByLink(page, 'vera@example.com')

  await page.goto(stack.web.url)
  await login(page, { email: 'vera@example.com' })
  assert.equal(await page.getByTestId('user-verified').textContent(), 'yes')
  await context.close()
})

test('forgot password from a second browser: reset, and the first browser is signed out', async () => {
  const first = await browser.newContext()
  const page = await first.newPage()
  await page.goto(stack.web.url)
  await registerUnverified(page, 'forgetful@example.com')
  await verifyByLink(page, 'forgetful@example.com')
  const sentBefore = mail.messages.length // the verification e-mail included
  await page.goto(stack.web.url)
  await login(page, { email: 'forgetful@example.com' })

  const second = await browser.newContext()
  const other = await second.newPage()
  await other.goto(stack.web.url)
  const forgot = other.getByTestId('forgot-form')
  await forgot.getByLabel('E-mail').fill('forgetful@example.com')
  await forgot.getByRole('button', { name: 'Send me a reset link' }).click()
  await other.getByText('If that address is registered').waitFor()
  const link = linkIn(await mail.waitFor('forgetful@example.com', sentBefore))
  assert.ok(link.startsWith(`${stack.web.url}/reset-password#token=`), link)
  await other.goto(link)
  const reset = other.getByTestId('link-form')
  await reset.getByLabel('New password', { exact: true }).fill('a brand new passphrase')
  await reset.getByLabel('Repeat new password').fill('a brand new passphrase')
  await reset.getByRole('button', { name: 'Reset my password' }).click()
  await other.getByText('Your password has been reset').waitFor()

  // The first browser's session was revoked: its next request signs it out.
  await page.getByTestId('reload').click()
  await page.getByTestId('signed-out').waitFor()
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'signed-out')

  await other.goto(stack.web.url)
  await login(other, { email: 'forgetful@example.com', password: 'a brand new passphrase' })
  await first.close()
  await second.close()
})

test("the server's own link page resets the password, under its CSP, with nothing from other hosts", async () => {
  const context = await browser.newContext()
  const elsewhere = []
  await context.route((url) => !['localhost', '127.0.0.1'].includes(url.hostname), (route) => {
    elsewhere.push(route.request().url())
    return route.abort()
  })
  const api = async (query, variables) => {
    const res = await context.request.post(`${stack.api.url}/graphql`, { data: { query, variables } })
    const body = await res.json()
    assert.equal(body.errors, undefined, JSON.stringify(body.errors))
  }
  await api('mutation($input: RegisterInput!) { register(input: $input) { id } }', {
    input: { name: 'Own', email: 'own-page@example.com', password: 'password1234', passwordConfirm: 'password1234' },
  })
  const verify = new URL(linkIn(await mail.waitFor('own-page@example.com')))
  const sent = mail.messages.length
  await api('mutation($e: String!) { requestPasswordReset(email: $e) }', { e: 'own-page@example.com' })
  const link = new URL(linkIn(await mail.waitFor('own-page@example.com', sent)))

  const page = await context.newPage()
  const problems = []
  page.on('pageerror', (e) => problems.push(e.message))
  page.on('console', (m) => /Content Security Policy|Refused to/.test(m.text()) && problems.push(m.text()))
  // The same paths on this server (EMAIL_LINK_BASE=the API's own URL).
  const response = await page.goto(`${stack.api.url}${link.pathname}${link.hash}`)
  assert.equal(response.headers()['referrer-policy'], 'no-referrer')
  await page.getByLabel('New password', { exact: true }).fill('own page password')
  await page.getByLabel('New password, again').fill('own page password')
  await page.getByRole('button', { name: 'Reset my password' }).click()
  await page.getByText('Your password has been reset').waitFor()
  // The reset verified the address: the verification link is still
  // usable, and the page says so without error.
  await page.goto(`${stack.api.url}${verify.pathname}${verify.hash}`)
  await page.getByRole('button', { name: 'Verify my address' }).click()
  await page.getByText('Your e-mail address is verified').waitFor()
  await api('mutation { login(input: {email: "own-page@example.com", password: "own page password"}) { accessToken } }')
  assert.deepEqual(problems, [])
  assert.deepEqual(elsewhere, [])
  await context.close()
})
