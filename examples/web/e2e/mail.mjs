// A real SMTP server for the browser tests (nodemailer's smtp-server, on
// loopback, clear text: EMAIL_TLS=none is allowed outside production), and
// the delivered messages parsed with mailparser.
import { SMTPServer } from 'smtp-server'
import { simpleParser } from 'mailparser'

export async function startMailServer() {
  const messages = []
  const waiters = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      simpleParser(stream).then((mail) => {
        messages.push(mail)
        for (const w of waiters.splice(0)) w()
        callback()
      }, callback)
    },
  })
  await new Promise((res) => server.listen(0, '127.0.0.1', res))
  const port = server.server.address().port
  return {
    port,
    env: { EMAIL_HOST: '127.0.0.1', EMAIL_PORT: String(port), EMAIL_TLS: 'none', EMAIL_FROM: 'Example <no-reply@example.test>' },
    messages,
    // next waits for a message to the address, newer than the n-th, and
    // returns it.
    async waitFor(to, after = 0, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const found = messages.slice(after).find((m) => m.to?.value?.some((a) => a.address === to))
        if (found) return found
        if (Date.now() > deadline) throw new Error(`no e-mail to ${to} in ${timeoutMs} ms (${messages.length} delivered)`)
        await new Promise((res) => {
          waiters.push(res)
          setTimeout(res, 250)
        })
      }
    },
    stop: () => new Promise((res) => server.close(res)),
  }
}

// linkIn returns the link of an e-mail, checking that its text and HTML
// parts carry the same one.
export function linkIn(mail) {
  const re = /https?:\/\/[^\s"<>]+#token=[A-Za-z0-9_-]+/
  const text = re.exec(mail.text ?? '')?.[0]
  const html = re.exec(mail.html || '')?.[0]
  if (!text || text !== html) throw new Error(`no link, or different links in the parts:\n${mail.text}\n${mail.html}`)
  return text
}
