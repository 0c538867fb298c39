"""ISAPI and Dahua CGI of the simulator, read with httpx.DigestAuth as a probe would."""

from __future__ import annotations

import datetime as dt

import httpx
from lxml import etree

from camwatch.clock import now as clock_now
from simulator.testing import SimulatedCampus, small_campus


def _url(dev, path):
    return f"http://{dev.host}:{dev.http_port}{path}"


def _find(root, name):
    return root.findtext(f".//{{*}}{name}")


def _kv(text):
    assert text.endswith("\r\n")
    return dict(line.split("=", 1) for line in text.split("\r\n") if "=" in line)


async def test_isapi_digest_auth_and_endpoints(tmp_path):
    campus = small_campus(tmp_path)
    async with SimulatedCampus(campus.inventory, campus.passwords, snmp=False) as sim:
        dev = sim.device(campus.recorder("hikvision"))
        async with httpx.AsyncClient(auth=httpx.DigestAuth(dev.username, "wrong")) as bad:
            r = await bad.get(_url(dev, "/ISAPI/System/deviceInfo"))
            assert r.status_code == 401
            assert "Digest" in r.headers["www-authenticate"]
        async with httpx.AsyncClient(auth=httpx.DigestAuth(dev.username, dev.password)) as http:
            r = await http.get(_url(dev, "/ISAPI/System/deviceInfo"))
            assert r.status_code == 200
            root = etree.fromstring(r.content)
            assert etree.QName(root).namespace == "http://www.hikvision.com/ver20/XMLSchema"
            assert _find(root, "model") == dev.model
            assert _find(root, "firmwareVersion") == dev.firmware

            root = etree.fromstring((await http.get(_url(dev, "/ISAPI/System/status"))).content)
            assert abs(int(_find(root, "deviceUpTime")) - dev.uptime_s()) < 5

            root = etree.fromstring((await http.get(_url(dev, "/ISAPI/System/time"))).content)
            local = dt.datetime.fromisoformat(_find(root, "localTime"))
            assert abs((local - clock_now()).total_seconds()) < 5

            root = etree.fromstring(
                (await http.get(_url(dev, "/ISAPI/ContentMgmt/Storage"))).content
            )
            hdds = root.findall(".//{*}hdd")
            assert len(hdds) == len(dev.disks)
            assert hdds[0].findtext("{*}status") == "ok"
            assert int(hdds[0].findtext("{*}capacity")) == dev.disks[0].capacity // 2**20

            r = await http.get(_url(dev, "/ISAPI/ContentMgmt/InputProxy/channels/status"))
            chans = etree.fromstring(r.content).findall(".//{*}InputProxyChannelStatus")
            assert [c.findtext("{*}online") for c in chans] == ["true"] * len(dev.channels)

            r = await http.get(_url(dev, "/ISAPI/ContentMgmt/record/tracks"))
            assert len(etree.fromstring(r.content).findall(".//{*}Track")) == len(dev.channels)

            r = await http.post(
                _url(dev, "/ISAPI/ContentMgmt/record/tracks/101/dailyDistribution"),
                content=b"<trackDailyParam><year>2020</year><monthOfYear>2</monthOfYear>"
                b"</trackDailyParam>",
            )
            days = etree.fromstring(r.content).findall(".//{*}day")
            assert len(days) == 29  # February 2020
            assert {d.findtext("{*}record") for d in days} == {"false"}  # long overwritten

            # Paged search over the last 6 hours of channel 1: 6-7 hourly files.
            now = clock_now() + dt.timedelta(hours=8)  # local time, 'Z' quirk
            start = (now - dt.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
            end = now.strftime("%Y-%m-%dT%H:%M:%SZ")
            spans = []
            pos = 0
            while True:
                body = (
                    "<CMSearchDescription><searchID>X</searchID><trackIDList><trackID>101"
                    "</trackID></trackIDList><timeSpanList><timeSpan>"
                    f"<startTime>{start}</startTime><endTime>{end}</endTime></timeSpan>"
                    "</timeSpanList><maxResults>3</maxResults>"
                    f"<searchResultPostion>{pos}</searchResultPostion></CMSearchDescription>"
                )
                r = await http.post(_url(dev, "/ISAPI/ContentMgmt/search"), content=body)
                root = etree.fromstring(r.content)
                items = root.findall(".//{*}searchMatchItem")
                spans += [
                    (i.findtext(".//{*}startTime"), i.findtext(".//{*}endTime")) for i in items
                ]
                pos += len(items)
                if _find(root, "responseStatusStrg") != "MORE":
                    break
            assert 6 <= len(spans) <= 7
            assert spans[0][0] == start

            r = await http.get(_url(dev, "/ISAPI/Streaming/channels/101/picture"))
            assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"


async def test_dahua_digest_auth_and_cgi(tmp_path):
    campus = small_campus(tmp_path)
    async with SimulatedCampus(campus.inventory, campus.passwords, snmp=False) as sim:
        dev = sim.device(campus.recorder("dahua"))
        async with httpx.AsyncClient(auth=httpx.DigestAuth(dev.username, "wrong")) as bad:
            r = await bad.get(_url(dev, "/cgi-bin/magicBox.cgi?action=getSystemInfo"))
            assert r.status_code == 401
        async with httpx.AsyncClient(auth=httpx.DigestAuth(dev.username, dev.password)) as http:
            info = _kv(
                (await http.get(_url(dev, "/cgi-bin/magicBox.cgi?action=getSystemInfo"))).text
            )
            assert info["serialNumber"] == dev.serial
            ver = _kv(
                (await http.get(_url(dev, "/cgi-bin/magicBox.cgi?action=getSoftwareVersion"))).text
            )
            assert ver["version"].startswith(dev.firmware)
            vendor = _kv((await http.get(_url(dev, "/cgi-bin/magicBox.cgi?action=getVendor"))).text)
            assert vendor == {"vendor": "Dahua"}
            t = _kv((await http.get(_url(dev, "/cgi-bin/global.cgi?action=getCurrentTime"))).text)
            local = dt.datetime.strptime(t["result"], "%Y-%m-%d %H:%M:%S")
            expect = clock_now().replace(tzinfo=None) + dt.timedelta(hours=8)
            assert abs((local - expect).total_seconds()) < 5
            disks = _kv(
                (
                    await http.get(_url(dev, "/cgi-bin/storageDevice.cgi?action=getDeviceAllInfo"))
                ).text
            )
            assert disks["list.info[0].State"] == "Success"
            assert float(disks["list.info[0].Detail[0].TotalBytes"]) == dev.disks[0].capacity

            obj = _kv(
                (await http.get(_url(dev, "/cgi-bin/mediaFileFind.cgi?action=factory.create"))).text
            )["result"]
            now = clock_now().replace(tzinfo=None) + dt.timedelta(hours=8)
            r = await http.get(
                _url(dev, "/cgi-bin/mediaFileFind.cgi"),
                params={
                    "action": "findFile",
                    "object": obj,
                    "condition.Channel": "1",
                    "condition.StartTime": (now - dt.timedelta(hours=3)).strftime(
                        "%Y-%m-%d %H:%M:%S"
                    ),
                    "condition.EndTime": now.strftime("%Y-%m-%d %H:%M:%S"),
                    "condition.Types[0]": "dav",
                },
            )
            assert r.text == "OK\r\n"
            found = []
            while True:
                page = _kv(
                    (
                        await http.get(
                            _url(
                                dev,
                                f"/cgi-bin/mediaFileFind.cgi?action=findNextFile&object={obj}&count=2",
                            )
                        )
                    ).text
                )
                n = int(page["found"])
                if n == 0:
                    break
                found += [page[f"items[{i}].EndTime"] for i in range(n)]
            assert 3 <= len(found) <= 4
            for action in ("close", "destroy"):
                r = await http.get(
                    _url(dev, f"/cgi-bin/mediaFileFind.cgi?action={action}&object={obj}")
                )
                assert r.text == "OK\r\n"
            r = await http.get(_url(dev, "/cgi-bin/snapshot.cgi?channel=1"))
            assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
            r = await http.get(_url(dev, "/cgi-bin/snapshot.cgi?channel=99"))
            assert r.status_code == 404


async def test_snmp_agents_are_served_with_the_campus(tmp_path):
    from pysnmp.hlapi.v3arch.asyncio import (
        CommunityData,
        ContextData,
        ObjectIdentity,
        ObjectType,
        SnmpEngine,
        UdpTransportTarget,
        get_cmd,
    )

    campus = small_campus(tmp_path)
    async with SimulatedCampus(campus.inventory, campus.passwords) as sim:
        dev = sim.device(campus.recorder("hikvision"))
        eng = SnmpEngine()
        try:
            target = await UdpTransportTarget.create(
                (dev.host, dev.snmp_port), timeout=3, retries=1
            )
            err, status, _, binds = await get_cmd(
                eng,
                CommunityData(dev.snmp_community, mpModel=1),  # noqa: S508 (devices speak v2c)
                target,
                ContextData(),
                ObjectType(ObjectIdentity("1.3.6.1.2.1.1.3.0")),  # sysUpTime
            )
            assert err is None and not status
            ticks = int(binds[0][1])
            assert abs(ticks / 100 - dev.uptime_s()) < 5
        finally:
            eng.close_dispatcher()


async def test_offline_camera_stops_its_channel_on_the_recorder(tmp_path):
    campus = small_campus(tmp_path)
    async with SimulatedCampus(campus.inventory, campus.passwords, snmp=False) as sim:
        cam = sim.device(campus.ip_camera("hikvision"))
        rec = sim.device(cam.recorder_id)
        await sim.fault(cam.id, "offline")
        async with httpx.AsyncClient(auth=httpx.DigestAuth(rec.username, rec.password)) as http:
            r = await http.get(_url(rec, "/ISAPI/ContentMgmt/InputProxy/channels/status"))
            chans = etree.fromstring(r.content).findall(".//{*}InputProxyChannelStatus")
            online = {int(c.findtext("{*}id")): c.findtext("{*}online") for c in chans}
            assert online[cam.channel_no] == "false"
            r = await http.get(_url(rec, "/ISAPI/ContentMgmt/record/tracks"))
            tracks = etree.fromstring(r.content).findall(".//{*}Track")
            enabled = {int(t.findtext("{*}Channel")): t.findtext("{*}Enable") for t in tracks}
            assert enabled[cam.channel_no] == "false"
        await sim.clear(cam.id)
        assert rec.channel(cam.channel_no).recording


async def test_each_device_answers_on_its_own_address_only(tmp_path):
    campus = small_campus(tmp_path)
    async with SimulatedCampus(campus.inventory, campus.passwords, snmp=False) as sim:
        hik = sim.device(campus.recorder("hikvision"))
        dahua = sim.device(campus.recorder("dahua"))
        async with httpx.AsyncClient(auth=httpx.DigestAuth(hik.username, hik.password)) as http:
            # A Hikvision recorder has no Dahua CGI, and vice versa.
            assert (
                await http.get(_url(hik, "/cgi-bin/magicBox.cgi?action=getVendor"))
            ).status_code == 404
            assert (await http.get(_url(dahua, "/ISAPI/System/deviceInfo"))).status_code == 404
