"""``dialer operator-result`` and ``dialer dropped-callback``: the inbound commands from the CLI.

They build the same JSON a CRM sends over MQTT and go through the same processor (validation,
idempotency by command id, the rules), then print the reply."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

from dialer.app import default_campaign
from dialer.commands.common import CliContext, Subparsers
from dialer.domain.rules import OperatorResult, RulesTable
from dialer.services import command_processor


def register(subparsers: Subparsers) -> None:
    op = subparsers.add_parser(
        "operator-result",
        help="record what an operator set on a call",
        description="Record an operator's result for a contact («Отказался разговаривать», a call-back "
        "time, wrong person → «Некорректный контакт» …). Same rules and idempotency as the MQTT command "
        "<prefix>/cmd/operator-result.",
    )
    op.add_argument("--campaign", required=True, metavar="NAME")
    op.add_argument("--contact", required=True, metavar="EXTERNAL_ID", help="the contact's CRM id")
    op.add_argument("--result", required=True, choices=[r.value for r in OperatorResult])
    op.add_argument("--callback-at", metavar="ISO", help="agreed call-back time (with --result callback)")
    op.add_argument("--comment", default="", help="journal text (the date is added)")
    op.add_argument("--operator", default="cli", metavar="NAME")
    op.add_argument("--command-id", metavar="ID", help="repeat a command safely by reusing its id")
    op.set_defaults(handler=_operator_result)

    dc = subparsers.add_parser(
        "dropped-callback",
        help="call back a dropped inbound call (3 tries at +1, +2, +3 min)",
        description="Schedule call-backs of a dropped or held-and-lost inbound call (3 tries, 1, 2 and "
        "3 minutes after the drop). Same as the MQTT command <prefix>/cmd/dropped-callback.",
    )
    dc.add_argument("--campaign", required=True, metavar="NAME")
    dc.add_argument("--number", required=True)
    dc.add_argument("--dropped-at", metavar="ISO", help="default: now")
    dc.add_argument("--contact", metavar="EXTERNAL_ID")
    dc.add_argument("--name", default="")
    dc.add_argument("--command-id", metavar="ID")
    dc.set_defaults(handler=_dropped_callback)


async def _process(ctx: CliContext, command_type: str, body: dict[str, Any]) -> int:
    settings = ctx.settings
    repo = await ctx.repository()
    processor = command_processor(
        repo,
        RulesTable.load(settings.rules_path),
        own_numbers_path=settings.own_numbers_path,
        clock=ctx.now,
        default_campaign=default_campaign(settings),
        region=settings.campaign.region,
    )
    reply = await processor.process(command_type, json.dumps(body, ensure_ascii=False).encode())
    print(json.dumps(reply.payload, ensure_ascii=False, indent=1))
    if not reply.ok:
        print(f"dialer: error: {reply.payload.get('error', 'command rejected')}", file=sys.stderr)
        return 1
    return 0


async def _operator_result(args: argparse.Namespace, ctx: CliContext) -> int:
    body: dict[str, Any] = {
        "command_id": args.command_id or f"cli-{uuid.uuid4()}",
        "campaign": args.campaign,
        "contact": args.contact,
        "result": args.result,
        "operator": args.operator,
    }
    if args.callback_at:
        body["callback_at"] = args.callback_at
    if args.comment:
        body["comment"] = args.comment
    return await _process(ctx, "operator-result", body)


async def _dropped_callback(args: argparse.Namespace, ctx: CliContext) -> int:
    body: dict[str, Any] = {
        "command_id": args.command_id or f"cli-{uuid.uuid4()}",
        "campaign": args.campaign,
        "number": args.number,
        "dropped_at": args.dropped_at or ctx.now().isoformat(),
        "name": args.name,
    }
    if args.contact:
        body["contact"] = args.contact
    return await _process(ctx, "dropped-callback", body)
