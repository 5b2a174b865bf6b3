# Provisions the hosts of a notif-infra topology on Hetzner Cloud: one server per NATS server
# named in terraform.tfvars.json (which `notif-infra render` writes), labelled with its
# topology and region, behind a firewall that opens the NATS and WireGuard ports. The output
# `hosts` is what `notif-infra hosts import` reads back into the topology.

terraform {
  required_version = ">= 1.5"
  required_providers {
    hcloud = {
      source  = "hetznercloud/hcloud"
      version = "~> 1.48"
    }
  }
}

locals {
  hosts = merge([
    for region, spec in var.regions : {
      for node in spec.nodes : node => {
        region      = region
        location    = spec.location
        server_type = spec.server_type
      }
    }
  ]...)
  tcp_ports = toset([for name, port in var.ports : tostring(port)])
}

resource "hcloud_ssh_key" "operator" {
  name       = "${var.topology}-operator"
  public_key = var.ssh_public_key
}

resource "hcloud_firewall" "nats" {
  name = "${var.topology}-nats"

  rule {
    direction  = "in"
    protocol   = "tcp"
    port       = "22"
    source_ips = var.ssh_source_ips
  }

  dynamic "rule" {
    for_each = local.tcp_ports
    content {
      direction  = "in"
      protocol   = "tcp"
      port       = rule.value
      source_ips = var.nats_source_ips
    }
  }

  dynamic "rule" {
    for_each = var.wireguard_port == null ? [] : [var.wireguard_port]
    content {
      direction  = "in"
      protocol   = "udp"
      port       = tostring(rule.value)
      source_ips = ["0.0.0.0/0", "::/0"]
    }
  }
}

resource "hcloud_server" "node" {
  for_each     = local.hosts
  name         = each.key
  server_type  = each.value.server_type
  location     = each.value.location
  image        = var.image
  ssh_keys     = [hcloud_ssh_key.operator.id]
  firewall_ids = [hcloud_firewall.nats.id]
  labels = {
    "notif-infra/topology" = var.topology
    "notif-infra/region"   = each.value.region
  }
}
