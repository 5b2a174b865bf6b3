output "hosts" {
  description = "Every provisioned host by NATS server name: `notif-infra hosts import` reads this."
  value = {
    for name, server in hcloud_server.node : name => {
      region      = server.labels["notif-infra/region"]
      public_ipv4 = server.ipv4_address
      public_ipv6 = server.ipv6_address
    }
  }
}
