// Unit tests of changeset-check's config and plan rules (node --test).
import assert from "node:assert/strict"
import { test } from "node:test"
import { checkConfig, checkPlan } from "./changeset-check.mjs"

const packages = [
  { name: "@awa/model", private: false, manifest: {} },
  { name: "@awa/testing", private: false, manifest: {} },
  { name: "@awa/cli", private: false, manifest: { peerDependencies: { "@awa/testing": "*" } } },
  { name: "@awa/bench", private: true, manifest: {} },
]
const good = {
  fixed: [],
  linked: [],
  access: "public",
  updateInternalDependencies: "patch",
  ignore: [],
  privatePackages: { version: false, tag: false },
  ___experimentalUnsafeOptions_WILL_CHANGE_IN_PATCH: { onlyUpdatePeerDependentsWhenOutOfRange: true },
}

test("the independent-versioning config passes", () => {
  assert.deepEqual(checkConfig(good, packages), [])
})

test("fixed and linked groups, restricted access, versioned private packages and peer cascades fail", () => {
  const text = checkConfig(
    {
      ...good,
      fixed: [["@awa/*"]],
      linked: [["@awa/model", "@awa/cli"]],
      access: "restricted",
      privatePackages: undefined,
      ___experimentalUnsafeOptions_WILL_CHANGE_IN_PATCH: undefined,
    },
    [
      ...packages,
      { name: "@awa/x", private: false, manifest: { peerDependencies: { "@awa/model": "workspace:^" } } },
    ],
  ).join("\n")
  for (const expected of [
    /`fixed`/,
    /`linked`/,
    /`access`/,
    /@awa\/bench is private/,
    /MAJOR release/,
    /"workspace:\^"/,
  ]) {
    assert.match(text, expected)
  }
  assert.deepEqual(checkConfig({ ...good, privatePackages: undefined, ignore: ["@awa/bench"] }, packages), [])
})

test("a major release nobody asked for and a released private package fail the plan", () => {
  const plan = {
    changesets: [{ id: "a", releases: [{ name: "@awa/testing", type: "minor" }] }],
    releases: [
      { name: "@awa/testing", type: "minor", oldVersion: "0.1.0", newVersion: "0.2.0" },
      { name: "@awa/cli", type: "major", oldVersion: "0.1.0", newVersion: "1.0.0" },
      { name: "@awa/bench", type: "patch", oldVersion: "0.0.0", newVersion: "0.0.1" },
    ],
  }
  const text = checkPlan(plan, packages).join("\n")
  assert.match(text, /@awa\/cli would get a major release \(0\.1\.0 -> 1\.0\.0\) that no changeset asks for/)
  assert.match(text, /@awa\/bench is private but the plan releases it/)
  const asked = {
    ...plan,
    changesets: [...plan.changesets, { id: "b", releases: [{ name: "@awa/cli", type: "major" }] }],
  }
  assert.doesNotMatch(checkPlan(asked, packages).join("\n"), /@awa\/cli/)
})
