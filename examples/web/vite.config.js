import { defineConfig } from 'vite'

// The frontend runs on CLIENT_ORIGIN (http://localhost:3000) and talks to the
// API on http://localhost:8000. Always "localhost", never 127.0.0.1: cookies
// ignore ports, so the two are the same site and the API's SameSite=Lax
// cookies travel with the page's requests.
export default defineConfig({
  server: { host: 'localhost', port: 3000, strictPort: true },
  preview: { host: 'localhost', port: 3000, strictPort: true },
})
