// Approves a review on the emulator's web page in headless Chromium, as a person would:
// load the page, click the review's Approve button, wait until the row shows it
// approved with a job. Usage: node approve_page.mjs EMULATOR_URL REVIEW_ID SCREENSHOT.png
// Prints one JSON line: {"status": ..., "job": ...}. Chromium is Debian's /usr/bin/chromium.
import { chromium } from "playwright-core";

const [url, reviewId, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  await page.goto(url + "/");
  const row = page.locator(`tr#${reviewId}`);
  await row.locator("button.approve").click({ timeout: 10000 });
  await row.locator("td.status", { hasText: "approved" }).waitFor({ timeout: 10000 });
  await row.locator("td.job", { hasText: "job_" }).waitFor({ timeout: 10000 });
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  const status = await row.locator("td.status").innerText();
  const job = await row.locator("td.job").innerText();
  console.log(JSON.stringify({ status, job }));
} finally {
  await browser.close();
}
