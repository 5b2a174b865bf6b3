variable "topology" {
  description = "The topology's name (labels and resource names)."
  type        = string
}

variable "regions" {
  description = "Per region, the NATS servers to provision and where."
  type = map(object({
    nodes       = list(string)
    location    = optional(string, "fsn1")
    server_type = optional(string, "cx22")
  }))
}

variable "ports" {
  description = "The NATS ports the firewall opens (client, cluster, gateway, leafnode, monitor)."
  type        = map(number)
}

variable "wireguard_port" {
  description = "The WireGuard UDP port, when the hosts form a mesh."
  type        = number
  default     = null
}

variable "image" {
  description = "The operating system image of every host."
  type        = string
  default     = "debian-12"
}

variable "ssh_public_key" {
  description = "The operator's SSH public key (give it as TF_VAR_ssh_public_key)."
  type        = string
}

variable "ssh_source_ips" {
  description = "Where SSH may come from."
  type        = list(string)
  default     = ["0.0.0.0/0", "::/0"]
}

variable "nats_source_ips" {
  description = "Where NATS clients and peers may come from."
  type        = list(string)
  default     = ["0.0.0.0/0", "::/0"]
}
