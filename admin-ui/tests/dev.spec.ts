// `tierkv dev`: the printed one-time link signs the browser in once; `/` leads to the
// dashboard; a wrong secret shows the API's problem detail.
import { expect, test } from "@playwright/test";
import { DESKTOP, Dev, shot } from "./support";

let dev: Dev;

test.beforeAll(async () => {
  dev = await Dev.start();
});

test.afterAll(() => dev?.stop());

test("the printed link signs in once, and leaves no token in the address bar", async ({ browser }) => {
  const link = await dev.dashboardLink();
  expect(link.startsWith(`${dev.url}/ui/#login=`)).toBe(true);

  const first = await browser.newContext({ viewport: DESKTOP });
  const page = await first.newPage();
  await page.goto(link);
  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
  await expect(page.getByTestId("health")).toContainText(/Healthy|Degraded/);
  expect(page.url()).toBe(`${dev.url}/ui/`);
  // The session is an HttpOnly cookie: scripts cannot read it.
  expect(await page.evaluate(() => document.cookie)).toBe("");
  const cookies = await first.cookies();
  const session = cookies.find((c) => c.name === "tierkv_admin");
  expect(session?.httpOnly).toBe(true);
  expect(session?.sameSite).toBe("Strict");
  await first.close();

  // The same link again: used up.
  const second = await browser.newContext({ viewport: DESKTOP });
  const again = await second.newPage();
  await again.goto(link);
  await expect(again.getByText("This sign-in link was used already or has expired")).toBeVisible();
  await expect(again.getByLabel("Cluster secret")).toBeVisible();
  await shot(again, "login-desktop");
  await second.close();
});

test("/ redirects to the dashboard, and a wrong secret shows the API's detail", async ({ page }) => {
  await page.goto(`${dev.url}/`);
  expect(page.url()).toBe(`${dev.url}/ui/`);
  await page.getByLabel("Cluster secret").fill("not-the-secret");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText("the credentials are not valid");
  await expect(page.getByRole("alert")).toContainText("unauthorized");
  // The development default works.
  await page.getByLabel("Cluster secret").fill("tierkv-dev-secret");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
  await expect(page.getByTestId("members").locator("tbody tr")).toHaveCount(3);
});
