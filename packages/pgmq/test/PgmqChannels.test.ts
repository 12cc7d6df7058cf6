import { describe, expect, it } from "vitest"
import {
  awaChannelFor,
  namespaceOf,
  parseAwaSentEvent,
  pgmqInsertChannelFor,
  sendChannelsFor,
} from "../src/PgmqChannels.js"

describe("PgmqChannels", () => {
  it.each([
    ["orders__email", "orders"],
    ["orders__email__eu", "orders"],
    ["orders", "orders"],
    ["__private", "__private"],
    ["Mixed-Case__x", "Mixed-Case"],
  ])("the namespace of %s is %s, as awa_pgmq.namespace_of computes it", (queue, namespace) => {
    expect(namespaceOf(queue)).toBe(namespace)
    expect(awaChannelFor(queue)).toBe(`awa_pgmq:${namespace}`)
  })

  it("names pgmq's insert channel after the queue's lower-cased table, and listens on both spellings", () => {
    expect(pgmqInsertChannelFor("Orders-EU")).toBe("pgmq.q_orders-eu.INSERT")
    expect(sendChannelsFor("orders")).toEqual(["awa_pgmq:orders", "pgmq.q_orders.INSERT"])
    expect(sendChannelsFor("Orders")).toEqual([
      "awa_pgmq:Orders",
      "pgmq.q_orders.INSERT",
      "pgmq.q_Orders.INSERT",
    ])
  })

  it("parses awa's sent events and ignores everything else", () => {
    expect(parseAwaSentEvent('{"v":1,"event":"sent","queue":"q","count":1,"delay":0}')).toMatchObject({
      queue: "q",
      delay: 0,
    })
    expect(parseAwaSentEvent('{"v":1,"event":"queue_created","queue":"q"}')).toBeUndefined()
    expect(parseAwaSentEvent("")).toBeUndefined()
    expect(parseAwaSentEvent("not json")).toBeUndefined()
    expect(parseAwaSentEvent("null")).toBeUndefined()
  })
})
